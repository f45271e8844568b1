"""The README's console examples, run as written, in a user's folder, against the simulated world.

Issue 13: the README and the tool had drifted apart. Here every ```console block of README.md
is run in order, as one user in one shell would: a temporary folder holding a copy of
`examples/` (a checkout), `cd` into it, each `$ ...` line handed to bash verbatim (relative
paths, `~`, quotes and comments included), with the variables the README exports kept for
the lines after. Each block that talks to the cloud gets its own simulated world
(tests/e2e/world.py: the fake DigitalOcean provider and API on one account, the fake
Kubernetes API server on the floating IP). Every line must exit 0 unless EXIT says otherwise,
and the output lines the README shows under a command must be printed by it, in that order.

What cannot run offline as written is in INSTEAD, each with the reason and what the test does
in its place; nothing else is skipped. Placeholders: `...` in `export DIGITALOCEAN_TOKEN=...`
is a real token (the simulated account's here); `broken.yaml`, which the README does not
show, is tests/data/readme/broken.yaml; prompts (`up` and `destroy` ask on a terminal) are
answered `y` on a terminal the test provides.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.e2e.world import World, world
from tests.support.rendering import ROOT
from tests.support.sim import FAILOVER_TOKEN, TOKEN

pytestmark = pytest.mark.integration

README = (ROOT / "README.md").read_text()
BROKEN = ROOT / "tests" / "data" / "readme" / "broken.yaml"


@dataclass
class Step:
    """One `$ ...` line of a console block and the output lines shown under it."""

    line: str
    shown: list[str] = field(default_factory=list)

    @property
    def command(self) -> str:
        """The line without its comment and with single spaces: the key of INSTEAD/EXIT."""
        return " ".join(re.sub(r"\s+#\s.*$", "", self.line).split())


def console_blocks() -> list[list[Step]]:
    blocks = []
    for body in re.findall(r"^```console\n(.*?)^```$", README, re.MULTILINE | re.DOTALL):
        steps: list[Step] = []
        for line in body.splitlines():
            if line.startswith("$ "):
                steps.append(Step(line[2:]))
            elif line.strip():
                assert steps, f"output before any command in a console block: {line!r}"
                steps[-1].shown.append(line)
        blocks.append(steps)
    return blocks


@dataclass
class Shell:
    """The user's shell: a folder, exported variables, and the world of the current block."""

    home: Path
    cwd: Path
    exported: dict[str, str] = field(default_factory=dict)
    world: World | None = None

    def env(self) -> dict[str, str]:
        base = dict(self.world.sim.env) if self.world else {
            k: v for k, v in os.environ.items() if not k.startswith("DIGITALOCEAN")}
        for name in ("DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN", "KUBECONFIG",
                     "PROVISION_FAILOVER_TOKEN"):
            base.pop(name, None)  # a user starts without them; the README exports the tokens
        base.update(self.exported)
        base["HOME"] = str(self.home)
        base["PATH"] = f"{self.home / 'bin'}{os.pathsep}{base.get('PATH', '/usr/bin:/bin')}"
        base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT),
                                                           os.environ.get("PYTHONPATH")]))
        base["NO_COLOR"] = "1"
        return base

    def run(self, line: str) -> tuple[int, str]:
        """``line`` through bash in the user's folder, on a terminal that answers y."""
        leader, follower = os.openpty()
        try:
            os.write(leader, b"y\n")
            process = subprocess.run(["bash", "-c", line], cwd=self.cwd, env=self.env(),
                                     stdin=follower, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, timeout=900)
        finally:
            os.close(follower)
            os.close(leader)
        return process.returncode, process.stdout


def _account_keys(shell: Shell, path: str) -> None:
    """The edit the README's comment asks for: this account's SSH keys in the file."""
    assert shell.world is not None
    file = shell.cwd / path
    doc = yaml.safe_load(file.read_text())
    doc["digitalocean"]["ssh_keys"] = shell.world.sim.fingerprints
    file.write_text(yaml.safe_dump(doc, sort_keys=False))


def _new_api_tag(shell: Shell) -> None:
    """`$EDITOR prod.yaml  # new image tag for api`: what a user types there."""
    file = shell.cwd / "prod.yaml"
    text = file.read_text()
    edited = text.replace("ghcr.io/acme/api:1.4.2", "ghcr.io/acme/api:1.5.0")
    assert edited != text
    partial = file.with_suffix(".partial")  # whole or not at all, as an editor saves
    partial.write_text(edited)
    partial.replace(file)


def _init_answers(shell: Shell) -> str:
    assert shell.world is not None
    keys = " ".join(f"--ssh-key {k}" for k in shell.world.sim.fingerprints)
    return ("provision init prod.yaml --yes --name prod " + keys
            + " --api-cidr 203.0.113.0/24 --app api=ghcr.io/acme/api:1.4.2:8080")


@dataclass(frozen=True)
class Instead:
    """What the test does for a README line that cannot run offline as written."""

    reason: str
    line: Callable[[Shell], str | None] = lambda shell: None  # what runs instead, if anything
    then: Callable[[Shell], None] = lambda shell: None  # done after it


def _export_token(shell: Shell) -> None:
    shell.exported["DIGITALOCEAN_TOKEN"] = TOKEN


def _export_failover_token(shell: Shell) -> None:
    shell.exported["PROVISION_FAILOVER_TOKEN"] = FAILOVER_TOKEN


def _export_secret(shell: Shell) -> None:
    shell.exported["STAGING_DATABASE_URL"] = "postgres://db.internal/staging"


# Every README line the test does not run as written (comment left out), and why.
INSTEAD: dict[str, Instead] = {
    "pip install -c constraints.txt .": Instead(
        "installs provision; this checkout's is `provision` on the test user's PATH"),
    "export DIGITALOCEAN_TOKEN=...": Instead(
        "`...` stands for a real API token: the simulated account's token instead",
        then=_export_token),
    "export PROVISION_FAILOVER_TOKEN=...": Instead(
        "`...` stands for a scoped token: the simulated account's failover token instead",
        then=_export_failover_token),
    "export STAGING_DATABASE_URL=...": Instead(
        "`...` stands for the app's real secret: a made-up database URL instead",
        then=_export_secret),
    "cp examples/staging.yaml my-env.yaml": Instead(
        "runs as written, then the edit its comment asks for: ssh_keys become the account's",
        line=lambda shell: "cp examples/staging.yaml my-env.yaml",
        then=lambda shell: _account_keys(shell, "my-env.yaml")),
    "provision init prod.yaml": Instead(
        "asks its questions on a terminal; the same answers are given as its flags",
        line=_init_answers),
    "$EDITOR prod.yaml": Instead(
        "an editor: the test makes the edit the comment describes (a new image tag for api)",
        then=_new_api_tag),
}

# Exit codes other than 0, with the README's reason.
EXIT: dict[str, tuple[set[int], str]] = {
    "provision validate broken.yaml": ({2}, "the README: mistakes exit with code 2"),
    "provision deploy prod.yaml": (
        {0, 3}, "refused outside the deploy windows (exit 3); prod.yaml as `init` writes it "
                "has none, so it deploys"),
}


@contextmanager
def block_world(shell: Shell, steps: list[Step], tmp_path: Path, number: int) -> Iterator[None]:
    """A fresh simulated world for a block that reaches the cloud."""
    online = any(re.match(r"provision (plan|up|status|deploy|rollback|kubeconfig|destroy|check|"
                          r"init)\b", s.command) and "--offline" not in s.command
                 for s in steps)
    if not online:
        yield
        return
    with world(tmp_path / f"world-{number}") as w:
        shell.world = w
        try:
            yield
        finally:
            shell.world = None
            assert w.boot.error is None, w.boot.error


def _config_of(command: str) -> str | None:
    found = re.match(r"provision \w+ ([\w./-]+\.yaml)\b", command)
    return found.group(1) if found else None


def test_readme_console_examples_run_as_written(tmp_path: Path) -> None:
    blocks = console_blocks()
    assert len(blocks) >= 3 and sum(len(b) for b in blocks) > 15
    listed = {s.command for b in blocks for s in b}
    assert set(INSTEAD) <= listed and set(EXIT) <= listed, "INSTEAD and EXIT name README lines"

    home = tmp_path / "home"
    (home / "bin").mkdir(parents=True)
    provision = home / "bin" / "provision"  # what `pip install .` puts on PATH
    provision.write_text(f"#!/bin/sh\nexec {sys.executable} -m provisioner \"$@\"\n")
    provision.chmod(0o755)
    user = home / "provision-checkout"
    shutil.copytree(ROOT / "examples", user / "examples")
    shutil.copy(BROKEN, user / "broken.yaml")
    shell = Shell(home, user)

    for number, steps in enumerate(blocks):
        with ExitStack() as stack:
            stack.enter_context(block_world(shell, steps, tmp_path, number))
            for step in steps:
                instead = INSTEAD.get(step.command)
                line = instead.line(shell) if instead else step.line
                config = _config_of(step.command)
                if shell.world is not None and config:
                    shell.world.sim.config = shell.cwd / config  # the world follows the file
                code, output = shell.run(line) if line is not None else (0, "")
                if instead:
                    instead.then(shell)
                shown_as = line if line is not None else f"({step.line}: {instead.reason})" \
                    if instead else step.line
                print(f"$ {shown_as}  -> exit {code}\n{output}")  # shown with pytest -s
                allowed, _ = EXIT.get(step.command, ({0}, ""))
                assert code in allowed, f"$ {line}\nexit {code}\n{output}"
                printed = [x.rstrip() for x in output.splitlines()]
                position = 0
                for shown in step.shown:
                    assert shown in printed[position:], (
                        f"$ {step.line}\nthe README shows {shown!r}; the tool printed:\n"
                        f"{output}")
                    position = printed.index(shown, position) + 1
