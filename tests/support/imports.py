"""What a provision command imports: a fresh process runs it and lists its packages."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.rendering import ROOT

_PROBE = """
import json, sys
from provisioner.cli.main import cli
try:
    cli.main(args=sys.argv[1:], prog_name="provision", standalone_mode=False)
except SystemExit:
    pass
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def imported_by(argv: list[str]) -> set[str]:
    """The top-level packages `provision ARGV` has imported when it ends (a fresh process)."""
    result = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True,
                            text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))
