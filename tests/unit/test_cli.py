"""The CLI: results on stdout, messages on stderr, documented exit codes, examples in --help."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from provisioner.cli.main import cli
from tests.support.rendering import ROOT

PROD = str(ROOT / "examples" / "production.yaml")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception)
    return result.exit_code, result.stdout, result.stderr


def test_validate_ok() -> None:
    code, out, err = run("validate", PROD)
    assert code == 0 and out == ""
    assert "environment 'prod' is valid (3 control-plane node(s), 3 worker(s), 2 app(s))" in err


def test_quiet_silences_messages() -> None:
    code, out, err = run("-q", "validate", PROD)
    assert (code, out, err) == (0, "", "")


def test_plan_offline_json_describes_the_environment(tmp_path: Path) -> None:
    code, out, _ = run("plan", PROD, "--offline", "--output", "json", "--workdir",
                       str(tmp_path / "w"))
    assert code == 0
    plan = json.loads(out)
    assert plan["control_plane"]["droplets"] == ["prod-cp-1", "prod-cp-2", "prod-cp-3"]
    workers = plan["worker_pools"][0]["droplets"]
    assert [re.sub(r"-[0-9a-f]{5}$", "", w) for w in workers] == [
        "prod-general-1", "prod-general-2", "prod-general-3"]
    assert len({w[-5:] for w in workers}) == 1, "one generation per pool"
    assert plan["api_endpoint"]["kind"] == "floating_ip"
    assert {a["name"]: a["replicas"] for a in plan["apps"]} == {"api": 3, "elasticsearch": 3}
    ports = {r["ports"] for r in plan["firewalls"]["controllers"]}
    assert {"6443", "2379-2380", "22", "10250"} <= ports
    assert plan["deploy_windows"] == [{"days": ["mon", "tue", "wed", "thu"], "from": "09:00",
                                       "to": "16:00", "timezone": "Europe/Berlin"}]
    assert plan["windows_apply_to"] == ["apps", "infrastructure", "upgrades"]
    assert plan["workdir"] == str(tmp_path / "w")
    assert (tmp_path / "w" / "terraform" / "terraform.tfvars.json").exists()


def test_plan_offline_text(tmp_path: Path) -> None:
    code, out, _ = run("plan", PROD, "--offline", "--workdir", str(tmp_path))
    assert code == 0
    assert "+ 3 control-plane droplet(s), s-4vcpu-8gb: prod-cp-1, prod-cp-2, prod-cp-3" in out
    assert "+ API endpoint: floating IP" in out
    assert "elasticsearch (StatefulSet, 3 replicas" in out
    assert ("Changes allowed (to apps, infrastructure, upgrades):\n"
            "  mon,tue,wed,thu 09:00-16:00 Europe/Berlin\n"
            "  frozen 2026-12-21 to 2027-01-04 (year-end freeze)") in out


def test_online_plan_without_a_token_is_a_usage_error(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIGITALOCEAN_TOKEN", raising=False)
    monkeypatch.delenv("DIGITALOCEAN_ACCESS_TOKEN", raising=False)
    code, out, err = run("plan", PROD, "--workdir", str(tmp_path))
    assert code == 2 and out == ""
    assert "export DIGITALOCEAN_TOKEN" in err


def test_bad_config_exit_code_and_location(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: prod\nkubernetes: {version: '1.2.3'}\n")
    code, out, err = run("plan", str(path), "--offline")
    assert code == 2 and out == ""
    assert f"{path}:2: kubernetes.version: Kubernetes 1.2 is not a supported minor" in err
    assert not (tmp_path / ".provision").exists(), "nothing is created for a bad config"


@pytest.mark.parametrize("command", ["validate", "render", "plan", "up", "destroy", "kubeconfig",
                                     "deploy", "rollback", "check", "status", "init",
                                     "rotate"])
def test_every_command_help_ends_with_examples(command: str) -> None:
    code, out, _ = run(command, "--help")
    assert code == 0
    assert "Examples:" in out
    examples = out.split("Examples:", 1)[1].strip().splitlines()
    assert examples and all(line.strip().startswith(("provision ", "kubectl "))
                            for line in examples)


def test_version() -> None:
    code, out, _ = run("--version")
    assert code == 0 and out.startswith("provision, version ")


@pytest.mark.parametrize(("args", "level"), [
    ((), 1), (("-q",), 0), (("-v",), 2), (("-vv",), 3), (("-v", "-v"), 3), (("-q", "-v"), 0),
])
def test_verbosity_flags_count_before_and_after_the_command(args: tuple[str, ...],
                                                            level: int) -> None:
    """-v and -q mean the same before the command name, after it, or split across both
    (issue 13: they worked only before it, as Click's group options do)."""
    import copy

    import click

    from provisioner.cli.common import console, verbosity_options

    seen: list[int] = []
    probe = click.Command("probe", callback=lambda: seen.append(console().verbosity),
                          params=verbosity_options())
    group = copy.copy(cli)
    group.commands = {"probe": probe}
    halves = [(args, ()), ((), args), (args[:1], args[1:])]
    for before, after in halves:
        result = CliRunner().invoke(group, [*before, "probe", *after])
        assert result.exit_code == 0, result.output
    assert seen == [level] * len(halves)


def test_quiet_and_verbose_after_the_command() -> None:
    assert run("validate", PROD, "-q") == (0, "", "")
    code, _, err = run("validate", PROD, "-v")
    assert code == 0 and "environment 'prod' is valid" in err
    for command in ("validate", "render", "plan", "up", "destroy", "kubeconfig", "deploy",
                    "rollback", "check", "status", "init", "rotate"):
        _, out, _ = run(command, "--help")
        assert "-v, --verbose" in out and "-q, --quiet" in out, command


def test_validate_takes_several_files_with_a_result_each(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: prod\nkubernetes: {version: '1.2.3'}\n")
    staging = str(ROOT / "examples" / "staging.yaml")
    code, out, err = run("validate", PROD, str(bad), staging)
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert lines[0] == (f"{PROD}: environment 'prod' is valid (3 control-plane node(s), "
                        "3 worker(s), 2 app(s))")
    assert f"{bad}:2: kubernetes.version: Kubernetes 1.2 is not a supported minor" in err
    assert (f"{staging}: environment 'staging' is valid (1 control-plane node(s), 2 worker(s), "
            "1 app(s))") in lines
    assert lines[-1] == "1 of 3 files have problems"
    assert run("validate", PROD, staging)[0] == 0
    code, _, err = run("validate")
    assert code == 2 and "Missing argument 'CONFIG...'" in err


@pytest.mark.parametrize("command", [
    ("deploy",), ("rollback",), ("status",), ("plan", "--apps-only"), ("plan",)])
def test_a_missing_kubeconfig_file_is_named(tmp_path: Path, command: tuple[str, ...]) -> None:
    """`--kubeconfig PATH` naming no file says so (it used to answer "pass --kubeconfig")."""
    missing = tmp_path / "kube" / "config"
    code, out, err = run(*command, PROD, "--kubeconfig", str(missing), "--workdir",
                         str(tmp_path / "w"))
    assert (code, out) == (2, "")
    assert err.strip() == (f"error: --kubeconfig {missing}: the file does not exist (name an "
                           "existing kubeconfig, or leave --kubeconfig out to use the "
                           "environment's own)")
    assert not (tmp_path / "w").exists(), "nothing was done before the check"
    missing.parent.mkdir()
    code, _, err = run(*command, PROD, "--kubeconfig", str(missing.parent))
    assert code == 2 and "is a directory" in err


def _provision_commands(line: str) -> list[list[str]]:
    """The `provision ...` commands of one shell line, cut at `&&`, `|`, `;` and `>`,
    without the comment; words as the shell passes them: a glob becomes two of the files it
    would match in a user's folder (`envs/*.yaml` -> `envs/1.yaml envs/2.yaml`)."""
    import shlex

    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if set(token) <= set("&|;><"):
            commands.append([])
        elif "*" in token:
            commands[-1] += [token.replace("*", "1"), token.replace("*", "2")]
        else:
            commands[-1].append(token)
    return [c for c in commands if c[:1] == ["provision"]]


def _parses(argv: list[str]) -> None:
    """Click accepts ``argv`` (group options, command, its arguments); raises otherwise."""
    with cli.make_context("provision", argv[1:]) as ctx:
        protected = getattr(ctx, "_protected_args", None)
        rest = [*(ctx.protected_args if protected is None else protected), *ctx.args]
        name, command, args = cli.resolve_command(ctx, rest)
        assert command is not None and name is not None
        command.make_context(name, args, parent=ctx).close()


HELP_PAGES = [(), *((c,) for c in sorted(cli.commands))]


@pytest.mark.parametrize("command", HELP_PAGES, ids=lambda c: c[0] if c else "provision")
def test_every_help_example_parses(command: tuple[str, ...]) -> None:
    """Each `provision ...` in an Examples section is accepted by Click as written (issue 13:
    `provision validate envs/*.yaml` was shown while validate took one file)."""
    import click

    code, out, _ = run(*command, "--help")
    assert code == 0
    examples = out.split("Examples:", 1)[1].split("\n\n", 1)[0].strip().splitlines()
    argvs = [argv for line in examples for argv in _provision_commands(line)]
    assert argvs, examples
    for argv in argvs:
        try:
            _parses(argv)
        except click.ClickException as e:
            pytest.fail(f"`{' '.join(argv)}` from `provision {' '.join(command)} --help`: "
                        f"{e.format_message()}")


def test_readme_commands_parse() -> None:
    """Every `provision ...` the README shows, in console blocks and in the prose, parses.
    (tests/e2e/test_readme_examples.py runs the console blocks.)"""
    import click

    readme = (ROOT / "README.md").read_text()
    lines = [line[2:] for line in readme.splitlines() if line.startswith("$ provision ")]
    # Whole commands only: not synopses (CONFIG, [--x], ...) nor a bare command name.
    prose = [" ".join(m.split()) for m in re.findall(r"`(provision [^`|]+?)`", readme)
             if not re.search(r"[A-Z]{3,}|\[|\.\.\.", m) and len(m.split()) > 2]
    assert len(lines) > 10 and len(prose) >= 3
    for line in [*lines, *prose]:
        for argv in _provision_commands(line):
            try:
                _parses(argv)
            except click.ClickException as e:
                pytest.fail(f"README `{line}`: {e.format_message()}")


@pytest.mark.parametrize("command", [("up", "--yes", "--until", "cluster"), ("plan",)])
def test_replace_names_a_control_plane_node_before_any_cloud_call(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]) -> None:
    monkeypatch.delenv("DIGITALOCEAN_TOKEN", raising=False)  # no call is made: no token needed
    monkeypatch.delenv("DIGITALOCEAN_ACCESS_TOKEN", raising=False)
    code, out, err = run(command[0], PROD, "--workdir", str(tmp_path), *command[1:],
                         "--replace", "prod-web-1")
    assert code == 2 and out == ""
    assert "--replace prod-web-1: not a control-plane droplet of prod (those are " \
           "prod-cp-1, prod-cp-2, prod-cp-3)" in err


def test_replace_cannot_change_a_saved_plan(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIGITALOCEAN_TOKEN", raising=False)
    monkeypatch.delenv("DIGITALOCEAN_ACCESS_TOKEN", raising=False)
    code, _, err = run("up", PROD, "--workdir", str(tmp_path), "--yes", "--until", "cluster",
                       "--plan", str(tmp_path / "prod.tfplan"), "--replace", "prod-cp-2")
    assert code == 2
    assert "provision plan CONFIG --out FILE --replace NAME" in err


def test_the_only_control_plane_node_of_a_running_cluster_is_not_replaced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """staging has one control-plane node: a new droplet has no member to join and would
    `kubeadm init` an empty cluster (terraform/controllers.tf), so `--replace` is refused
    (exit 3) once the work folder has reached the cluster, before any cloud call."""
    monkeypatch.delenv("DIGITALOCEAN_TOKEN", raising=False)
    monkeypatch.delenv("DIGITALOCEAN_ACCESS_TOKEN", raising=False)
    staging = str(ROOT / "examples" / "staging.yaml")
    (tmp_path / "kubeconfig").write_text("apiVersion: v1\n")
    code, out, err = run("up", staging, "--workdir", str(tmp_path), "--yes", "--until",
                         "cluster", "--replace", "staging-cp-1")
    assert code == 3 and out == "", err
    assert "it is the only control-plane node" in err


@pytest.mark.parametrize("mode", ["--offline", "--apps-only"])
def test_replace_is_not_silently_ignored_by_a_plan_that_asks_no_terraform(
        tmp_path: Path, mode: str) -> None:
    code, _, err = run("plan", PROD, "--workdir", str(tmp_path), mode,
                       "--replace", "prod-cp-2")
    assert code == 2
    assert "cannot be combined with --offline or --apps-only" in err
