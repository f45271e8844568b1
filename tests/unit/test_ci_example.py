"""examples/ci/github-actions.yml: triggers, serialized applies, no prompts, exit 4 as a pass,
no saved plan uploaded, secrets from the store; its shell steps are run for real against a
stand-in `provision`, the way the runner runs them (bash -eo pipefail)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.rendering import ROOT

WORKFLOW_PATH = ROOT / "examples" / "ci" / "github-actions.yml"
WORKFLOW: dict[Any, Any] = yaml.safe_load(WORKFLOW_PATH.read_text())
JOBS: dict[str, Any] = WORKFLOW["jobs"]


def triggers() -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as the boolean true.
    found: dict[str, Any] = WORKFLOW.get("on", WORKFLOW.get(True))
    return found


def steps(job: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = JOBS[job]["steps"]
    return found


def step(job: str, containing: str) -> dict[str, Any]:
    (found,) = [s for s in steps(job) if containing in s.get("run", "")]
    return found


def every_run() -> list[str]:
    return [s["run"] for job in JOBS for s in steps(job) if "run" in s]


def test_triggers() -> None:
    on = triggers()
    assert set(on) == {"pull_request", "push", "workflow_dispatch"}
    assert on["push"]["branches"] == ["main"]
    assert "pull_request_target" not in on, "PR code must never run with write secrets"
    assert JOBS["plan"]["if"] == "github.event_name == 'pull_request'"
    apply_if = JOBS["apply"]["if"]
    assert "github.ref == 'refs/heads/main'" in apply_if and "pull_request" not in apply_if
    assert WORKFLOW["permissions"] == {"contents": "read"}


def test_applies_of_one_environment_never_overlap() -> None:
    concurrency = JOBS["apply"]["concurrency"]
    assert "${{ matrix.environment }}" in concurrency["group"]
    assert concurrency["cancel-in-progress"] is False, "an apply is never interrupted"
    assert JOBS["apply"]["environment"] == "${{ matrix.environment }}"
    assert JOBS["apply"]["strategy"]["max-parallel"] == 1
    plans = JOBS["plan"]["concurrency"]
    assert "matrix.environment" in plans["group"] and plans["group"] != concurrency["group"]


def test_up_without_prompts_then_deploy() -> None:
    runs = [s.get("run", "") for s in steps("apply")]
    up = next(i for i, r in enumerate(runs) if "provision up " in r)
    deploy = next(i for i, r in enumerate(runs) if "provision deploy " in r)
    assert "--yes" in runs[up].split() and up < deploy
    # up would deploy the apps itself (and wait for a deploy window first); deploy does it.
    assert "--until cluster" in runs[up]
    assert all("provision destroy" not in r for r in every_run())


def test_plan_command() -> None:
    run = step("plan", "provision plan ")["run"]
    command = " ".join(run.split("provision plan ", 1)[1].split("||")[0].replace("\\\n", " ")
                       .split())
    for part in ("--out", "--output json", "--exit-code"):
        assert part in command
    assert '--out "$RUNNER_TEMP/plan.tfplan"' in command, "the saved plan stays out of the tree"


def test_no_saved_plan_is_uploaded() -> None:
    uploads = [s for job in JOBS for s in steps(job)
               if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert uploads
    for upload in uploads:
        path = str(upload["with"]["path"])
        assert "tfplan" not in path and "*" not in path and path.endswith(".json")
        assert "provision-work" not in path and path.strip() not in (".", "./")
    cleanup = [s["run"] for s in steps("plan") if s.get("if") == "always()"]
    assert any("plan.tfplan" in r and "rm " in r for r in cleanup)


def test_secrets_come_from_the_store_and_only_to_the_steps_that_need_them() -> None:
    text = WORKFLOW_PATH.read_text()
    assert "secrets.DIGITALOCEAN_TOKEN" in text
    assert "secrets" not in json.dumps(WORKFLOW.get("env", {}))
    for name, job in JOBS.items():
        assert "secrets." not in json.dumps(job.get("env", {})), name
    for job, command in (("plan", "provision plan "), ("apply", "provision up ")):
        env = step(job, command)["env"]
        for name in ("DIGITALOCEAN_TOKEN", "SPACES_ACCESS_KEY_ID", "SPACES_SECRET_ACCESS_KEY",
                     "PROVISION_SECRETS_KEY"):
            assert env[name] == f"${{{{ secrets.{name} }}}}"
    assert "secrets." not in json.dumps(steps("validate")), "validate and check need none"
    installs = [s for job in JOBS for s in steps(job) if "pip install" in s.get("run", "")]
    assert installs and all("env" not in s for s in installs)


def test_run_scripts_take_values_from_the_environment_only() -> None:
    # `${{ }}` inside a script is pasted as text before the shell sees it (script injection).
    for run in every_run():
        assert "${{" not in run, run


def test_the_placeholder_is_clearly_marked() -> None:
    text = WORKFLOW_PATH.read_text()
    assert WORKFLOW["env"]["PROVISION_PACKAGE"] == "git+https://github.com/<org>/provision@<tag>"
    assert "PLACEHOLDER" in text and "CHANGE ME" in text


def test_readme_explains_the_exit_codes() -> None:
    readme = (ROOT / "examples" / "ci" / "README.md").read_text()
    for code, meaning in (("0", "success"), ("1", "failure"), ("2", "bad usage"),
                          ("3", "refused by policy"), ("4", "changes pending")):
        assert re.search(rf"^\| {code} \| {meaning}", readme, re.MULTILINE), code
    assert "deploy window" in readme and "github-actions.yml" in readme


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
@pytest.mark.parametrize("index", range(len(every_run())))
def test_shellcheck(index: int, tmp_path: Path) -> None:
    script = tmp_path / "step.sh"
    script.write_text(every_run()[index])
    result = subprocess.run(["shellcheck", "--shell=bash", "--severity=style", str(script)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


# ----------------------------------------------------------------- running the steps


class Runner:
    """A workspace, a stand-in `provision` that logs its arguments, and GitHub's files."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.workspace = tmp_path / "workspace"
        self.temp = tmp_path / "runner-temp"
        self.bin = tmp_path / "bin"
        for folder in (self.workspace, self.temp, self.bin):
            folder.mkdir()
        self.log = tmp_path / "provision.log"
        self.output = tmp_path / "github-output"
        self.summary = tmp_path / "step-summary"
        plan = {"summary": "1 to create, 0 to change", "changes_pending": True,
                "changes": [{"address": "digitalocean_droplet.x[\"a|b\"]", "action": "create",
                             "type": "digitalocean_droplet", "name": "a",
                             "attributes": []}]}
        self._tool("provision", f"""printf '%s\\n' "$*" >> {self.log}
printf '%s\\n' '{json.dumps(plan)}'
exit "${{FAKE_RC:-0}}"
""")
        self._tool("python", f'exec {sys.executable} "$@"\n')

    def _tool(self, name: str, body: str) -> None:
        path = self.bin / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)

    def run(self, script: str, rc: int = 0, **env: str) -> subprocess.CompletedProcess[str]:
        path = self.tmp / "step.sh"
        path.write_text(script)
        environ = {"PATH": f"{self.bin}:/usr/bin:/bin", "RUNNER_TEMP": str(self.temp),
                   "GITHUB_OUTPUT": str(self.output), "GITHUB_STEP_SUMMARY": str(self.summary),
                   "ENV_NAME": "staging", "ENV_FILE": "envs/staging.yaml", "FAKE_RC": str(rc),
                   **env}
        # What the runner runs for `shell: bash` (the default on Linux).
        return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(path)],
                              cwd=self.workspace, env=environ, capture_output=True, text=True,
                              timeout=60)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    return Runner(tmp_path)


@pytest.mark.parametrize(("rc", "passes", "changes"), [
    (0, True, "false"), (4, True, "true"), (1, False, None), (2, False, None), (3, False, None)])
def test_plan_step_takes_exit_4_as_a_pass(runner: Runner, rc: int, passes: bool,
                                          changes: str | None) -> None:
    result = runner.run(step("plan", "provision plan ")["run"], rc=rc)
    assert (result.returncode == 0) is passes, result.stderr
    if passes:
        assert runner.output.read_text() == f"changes={changes}\n"
        saved = json.loads((runner.workspace / "plan-summary" / "staging.json").read_text())
        assert saved["changes_pending"] is True
    else:
        assert result.returncode == rc and f"exit code {rc}" in result.stdout
    (call,) = runner.calls()
    assert call.startswith("plan envs/staging.yaml ") and f"--out {runner.temp}/plan.tfplan" in call


def test_summary_step_writes_a_table(runner: Runner) -> None:
    (runner.workspace / "plan-summary").mkdir()
    plan = {"summary": "1 to create", "changes_pending": True,
            "changes": [{"address": 'x["a|b"]', "action": "create", "attributes": ["size"]}]}
    (runner.workspace / "plan-summary" / "staging.json").write_text(json.dumps(plan))
    result = runner.run(next(s for s in steps("plan") if s.get("name") == "Summary")["run"])
    assert result.returncode == 0, result.stderr
    text = runner.summary.read_text()
    assert "### provision plan: staging" in text and "1 to create" in text
    assert '| create | `x["a\\|b"]` | size |' in text


def _env_file(runner: Runner, text: str) -> None:
    (runner.workspace / "envs").mkdir(exist_ok=True)
    (runner.workspace / "envs" / "staging.yaml").write_text(text)


@pytest.mark.parametrize(("state", "passes"), [
    ("", False), ("state: {backend: local}\n", False),
    ("state: {backend: spaces, bucket: b, region: fra1}\n", True)])
def test_remote_state_is_required(runner: Runner, state: str, passes: bool) -> None:
    _env_file(runner, "name: staging\n" + state)
    for job in ("plan", "apply"):
        result = runner.run(step(job, "state.backend")["run"])
        assert (result.returncode == 0) is passes, result.stdout + result.stderr


def test_deploy_refuses_empty_secrets_and_explains_a_policy_refusal(runner: Runner) -> None:
    _env_file(runner, "name: staging\nsecrets:\n  DATABASE_URL: STAGING_DATABASE_URL\n")
    deploy = step("apply", "provision deploy ")["run"]
    result = runner.run(deploy, STAGING_DATABASE_URL="", OVERRIDE_REASON="")
    assert result.returncode == 2 and "STAGING_DATABASE_URL" in result.stdout
    assert runner.calls() == [], "nothing deployed with an empty secret"

    result = runner.run(deploy, rc=3, STAGING_DATABASE_URL="postgres://x", OVERRIDE_REASON="")
    assert result.returncode == 3 and "refused by the deploy policy" in result.stdout
    assert runner.calls()[-1] == f"deploy envs/staging.yaml --workdir {runner.temp}/provision-work"

    result = runner.run(deploy, STAGING_DATABASE_URL="postgres://x",
                        OVERRIDE_REASON="hotfix INC-1; rm -rf /")
    assert result.returncode == 0
    assert runner.calls()[-1].endswith("--override-window --reason hotfix INC-1; rm -rf /")


def test_old_cluster_secrets_are_still_unpacked_when_set(runner: Runner,
                                                         tmp_path: Path) -> None:
    """provision restores the secrets from the sealed copy (PROVISION_SECRETS_KEY); the CI
    secret of earlier workflows, if still set, is unpacked for provision to check and seal."""
    restore = step("apply", "CLUSTER_SECRETS")["run"]
    result = runner.run(restore, CLUSTER_SECRETS="")
    assert result.returncode == 0 and "from the sealed copy" in result.stdout
    assert not (runner.temp / "provision-work").exists()

    made = tmp_path / "made"
    (made / "secrets").mkdir(parents=True)
    for name in ("ca.crt", "ca.key", "bootstrap.json"):
        (made / "secrets" / name).write_text(name)
    packed = subprocess.run(f"tar -C {made} -czf - secrets | base64 | tr -d '\\n'", shell=True,
                            capture_output=True, text=True, check=True).stdout
    result = runner.run(restore, CLUSTER_SECRETS=packed)
    assert result.returncode == 0, result.stderr
    restored = runner.temp / "provision-work" / "secrets" / "ca.key"
    assert restored.read_text() == "ca.key"
    assert restored.stat().st_mode & 0o077 == 0 and restored.parent.stat().st_mode & 0o077 == 0
