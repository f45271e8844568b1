"""The README documents exactly the keys the loader accepts, and its first lines stay true."""

from __future__ import annotations

import re

from provisioner.config.app_sections import APP_KEYS
from provisioner.config.load import TOP_KEYS
from tests.support.rendering import ROOT

README = (ROOT / "README.md").read_text()


def _section_keys(heading: str) -> set[str]:
    body = README.split(f"### {heading}\n", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    keys: set[str] = set()
    for cell in re.findall(r"^\| ((?:`[a-z_]+`(?:, )?)+) \|", body, re.MULTILINE):
        keys.update(re.findall(r"`([a-z_]+)`", cell))
    return keys


def test_every_key_is_documented() -> None:
    assert _section_keys("Top level") == set(TOP_KEYS)
    assert _section_keys("apps") == set(APP_KEYS)
    assert _section_keys("digitalocean") == {"region", "ssh_keys", "vpc_cidr", "tags", "project",
                                             "image"}
    assert _section_keys("kubernetes") == {"version", "pod_cidr", "service_cidr", "cni"}
    assert _section_keys("control_plane") == {"count", "size", "endpoint"}
    assert _section_keys("worker_pools") == {"name", "count", "size", "labels", "taints",
                                             "replace", "autoscale"}
    assert _section_keys("access") == {"api_cidrs", "ssh_cidrs"}
    assert _section_keys("deploy_policy") == {"timezone", "windows", "freeze",
                                             "applies_to"}
    assert _section_keys("state") == {"backend", "bucket", "region", "key", "endpoint"}
    from provisioner.config.backup_section import KEYS as BACKUP_KEYS

    assert _section_keys("backups") == set(BACKUP_KEYS)


def test_first_lines_give_the_two_commands() -> None:
    lines = README.splitlines()
    assert lines[2].startswith("Set up and run: `pip install -c constraints.txt . && "
                               "provision plan examples/")
    assert lines[4].startswith("Run the tests: ") and "python3 -m pytest" in lines[4]
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.rstrip().endswith("python3 -m pytest")


def _steps(script: str) -> list[list[str]]:
    """The commands a shell script runs, one argv each, without what only changes how
    much they print (-qq, --quiet, ...) or where (redirections), nor the set-up lines."""
    import shlex

    quiet = {"-qq", "-q", "--quiet", "--disable-pip-version-check", ">/dev/null"}
    steps = []
    for line in script.replace("\\\n", " ").splitlines():
        words = [w for w in shlex.split(line, comments=True) if w not in quiet]
        if not words or words[0] in ("set", "cd", "export"):
            continue
        if words[:3] == ["python3", "-m", "pip"]:
            words = words[2:]
        steps.append(words)
    return steps


def test_ci_runs_the_readmes_test_command() -> None:
    """`.ci/run` installs, then runs the README's test command, step for step (issue 13: the
    README left out the `apt-get update` without which a fresh machine's install fails)."""
    command = re.search(r"Run the tests: `([^`]+)`", README)
    assert command is not None
    readme = [s.split() for s in command.group(1).replace("'", "").split(" && ")]
    ci = _steps((ROOT / ".ci" / "run").read_text())
    assert ci == readme
    assert readme[0] == ["apt-get", "update"] and readme[-1] == ["python3", "-m", "pytest"]
