"""Run `FakeDigitalOcean` as its own process, e.g. inside a test's network namespace.

    python -m tests.fakes.doapi.serve --state ACCOUNT.json --host 10.123.0.100 --port 8080 \
        --token sim-token --requests requests.jsonl

In-process the fake listens on 127.0.0.1 of whatever network namespace the test runs in;
a failover test needs it at an address that processes in *other* namespaces reach, so it
runs here, in the namespace of a "cloud" host. The account file is shared as usual (the
test seeds it and reads assignments from it); the request log, which lives in this
process, is appended to `--requests` as JSON lines (one `RequestRecord` each, written
before the response is sent), and `read_requests()` reads it back with the same filter as
`FakeDigitalOcean.requests()`.

The process prints one line, ``listening <endpoint>``, once it accepts connections, and
stops by itself after `--lifetime` seconds (a test that dies must not leave it serving),
or on SIGTERM / SIGINT.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
from collections.abc import Iterable
from fnmatch import fnmatchcase
from pathlib import Path
from types import FrameType

from .faults import RequestRecord
from .routes import Response
from .server import DEFAULT_TOKEN, FakeDigitalOcean


class LoggingFakeDigitalOcean(FakeDigitalOcean):
    """`FakeDigitalOcean` that also appends every answered request to a JSON-lines file.

    The other process (the test) cannot see this process's in-memory log; the file is
    how it learns what arrived and when (`RequestRecord.at`).
    """

    def __init__(self, state: Path, tokens: Iterable[str], *, host: str, port: int,
                 requests_path: Path | None) -> None:
        super().__init__(state, tokens, host=host, port=port)
        self._requests_path = requests_path
        self._written = 0
        self._write_lock = threading.Lock()

    def respond(self, method: str, target: str, authorization: str, raw: bytes) -> Response:
        """Answer as the fake does, then flush new log records to the file."""
        response = super().respond(method, target, authorization, raw)
        if self._requests_path is not None:
            with self._write_lock:
                records = self.request_log[self._written:]
                self._written += len(records)
                with self._requests_path.open("a", encoding="utf-8") as out:
                    for record in records:
                        out.write(json.dumps(dataclasses.asdict(record), default=str) + "\n")
        return response


def read_requests(path: Path, method: str | None = None,
                  pattern: str | None = None) -> list[RequestRecord]:
    """Records written by a `--requests` file, filtered like `FakeDigitalOcean.requests()`."""
    if not path.is_file():
        return []
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            record = RequestRecord(**json.loads(line))
        except (ValueError, TypeError):  # a line being written right now
            continue
        if method is not None and record.method != method.upper():
            continue
        if pattern is not None and not fnmatchcase(record.path, pattern):
            continue
        found.append(record)
    return found


def main(argv: list[str] | None = None) -> int:
    """Serve until the lifetime runs out or a signal arrives."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.doapi.serve",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--state", type=Path, required=True, help="the account file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--token", action="append", help="accepted bearer token (repeatable)")
    parser.add_argument("--requests", type=Path, help="append the request log here (JSONL)")
    parser.add_argument("--lifetime", type=float, default=600.0,
                        help="stop by itself after this many seconds")
    options = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    fake = LoggingFakeDigitalOcean(options.state, options.token or [DEFAULT_TOKEN],
                                   host=options.host, port=options.port,
                                   requests_path=options.requests)
    with fake:
        print(f"listening {fake.endpoint}", flush=True)
        stop.wait(options.lifetime)
    return 0


if __name__ == "__main__":
    sys.exit(main())
