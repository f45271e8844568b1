"""README "Several regions": its console block run as written, in a copy of examples/, with
`provision` on PATH as `pip install .` puts it; each output line the README shows under a
command must be printed by it, in that order. (tests/e2e/test_readme_examples.py runs every
console block too, in its simulated world; this one runs the fleet's alone, quickly.)"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.rendering import ROOT

pytestmark = pytest.mark.integration


def fleet_block() -> list[tuple[str, list[str]]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Several regions\n", 1)[1].split("\n## ", 1)[0]
    body = re.findall(r"^```console\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert len(body) == 1
    steps: list[tuple[str, list[str]]] = []
    for line in body[0].splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif line.strip():
            steps[-1][1].append(line)
    return steps


def test_the_readme_fleet_walkthrough_runs_as_written(tmp_path: Path) -> None:
    steps = fleet_block()
    assert [s.split()[1] for s, _ in steps] == ["validate", "plan", "check"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "provision").write_text(f"#!/bin/sh\nexec {sys.executable} -m provisioner "
                                       '"$@"\n')
    (bin_dir / "provision").chmod(0o755)
    user = tmp_path / "checkout"
    shutil.copytree(ROOT / "examples", user / "examples")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITALOCEAN")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
               NO_COLOR="1")
    for line, shown in steps:
        done = subprocess.run(["bash", "-c", line], cwd=user, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
        assert done.returncode == 0, f"$ {line}\n{done.stdout}"
        printed = [x.rstrip() for x in done.stdout.splitlines()]
        position = 0
        for expected in shown:
            assert expected in printed[position:], f"$ {line}\nmissing {expected!r}:\n" + (
                done.stdout)
            position = printed.index(expected, position) + 1
    for name in ("fra1", "ams3", "nyc3"):  # plan --offline rendered each into its own folder
        assert (user / "examples" / "fleet" / ".provision" / name).is_dir()
