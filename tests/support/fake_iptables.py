#!/usr/bin/env python3
"""A stand-in for ``iptables -t nat`` that keeps its chains in a JSON file beside it.

For unit tests of the failover agent, which run on the test machine itself: the real
command would change the machine's own tables (tests/integration/test_floating_ip_self.py
runs the real one, inside network namespaces). It understands exactly the commands the
agent issues (``-S``, ``-N``, ``-C``, ``-I``, ``-A``, ``-F`` on the nat table, with
``-w SECONDS``), prints ``-S`` as iptables does (``-N CHAIN`` first, then one ``-A`` line
per rule) and exits 1 where iptables does (a chain or rule that does not exist). Every
call is appended to ``calls.jsonl``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def install(folder: Path) -> Path:
    """This stand-in as an executable ``iptables`` in ``folder`` (one per simulated node:
    the chains live beside it); for ``Settings.iptables``."""
    target = folder / "iptables"
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        target.write_text(f"#!{sys.executable}\n" + Path(__file__).read_text())
        target.chmod(0o755)
    return target


def main(argv: list[str]) -> int:
    state_file = HERE / "iptables-state.json"
    with (HERE / "calls.jsonl").open("a") as calls:
        calls.write(json.dumps(argv) + "\n")
    state = json.loads(state_file.read_text()) if state_file.is_file() else {"OUTPUT": []}
    args = list(argv)
    if args[:1] == ["-w"]:
        args = args[2:]
    if args[:2] != ["-t", "nat"]:
        print("fake iptables: only the nat table", file=sys.stderr)
        return 2
    op, chain, rest = args[2], args[3], args[4:]
    if op == "-N":
        if chain in state:
            return 1
        state[chain] = []
    elif chain not in state:
        print(f"iptables: No chain/target/match by that name ({chain}).", file=sys.stderr)
        return 1
    elif op == "-S":
        print(f"-N {chain}" if chain != "OUTPUT" else "-P OUTPUT ACCEPT")
        for rule in state[chain]:
            print(" ".join(["-A", chain, *rule]))
        return 0
    elif op == "-C":
        return 0 if rest in state[chain] else 1
    elif op == "-I":
        state[chain].insert(int(rest[0]) - 1, rest[1:])
    elif op == "-A":
        state[chain].append(rest)
    elif op == "-F":
        state[chain] = []
    else:
        return 2
    state_file.write_text(json.dumps(state))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
