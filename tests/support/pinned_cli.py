"""`python -m tests.support.pinned_cli ARGS`: provision as a real process at the test's instant.

Tests that need a real process (signals, concurrency) start this instead of
`python -m provisioner`, so the process judges windows by the same pinned instant as the
in-process commands of the same test (see tests/support/clock.py).
"""

from __future__ import annotations

import provisioner.clock
from provisioner.cli.main import main
from tests.support.clock import pinned

if __name__ == "__main__":
    instant = pinned()
    provisioner.clock.now = lambda: instant
    main()
