"""Terraform commands on one rendered root module: init, plan, show, apply, output.

Every command streams through the runner, so the caller's ``on_event`` sees resource
progress live, and every failure becomes an :class:`InfraError` that names the resource and
quotes the provider's own error.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioner.errors import ProvisionError, UsageError
from provisioner.infra import runner
from provisioner.infra.engine import Engine
from provisioner.infra.runner import OnEvent, RunResult
from provisioner.render.writer import write_file
from provisioner.resources import data_dir

# Long enough for another CI job's apply to finish, short enough to notice a stale lock.
LOCK_TIMEOUT = "10m"


class InfraError(ProvisionError):
    """Terraform failed; the message names the resources and quotes the provider."""


def describe_diagnostics(result: RunResult) -> str:
    """One line per error: ``address: summary: detail``, as Terraform reported them."""
    lines = []
    for diagnostic in result.diagnostics():
        where = diagnostic.get("address") or ""
        detail = " ".join(str(diagnostic.get("detail") or "").split())
        summary = diagnostic.get("summary", "error")
        text = f"{summary}: {detail}" if detail else summary
        lines.append(f"  {where}: {text}" if where else f"  {text}")
    if not lines:
        # Commands without -json (init) report their errors on stderr, after progress on
        # stdout: the error is what the user needs, the progress only if there is none.
        said = [" ".join(line.split()) for line in result.stderr.splitlines() if line.strip()]
        tail = [e["@message"] for e in result.events if e.get("type") == "text"][-5:]
        lines = [f"  {line}" for line in (said[-10:] or tail)]
    return "\n".join(dict.fromkeys(lines))  # Terraform repeats some diagnostics per resource


LOCK_FILE = ".terraform.lock.hcl"
LOCK_ENV = "PROVISION_TERRAFORM_LOCK_FILE"


def seed_provider_lock(module: Path) -> None:
    """Give a module without a provider lock the one provision ships (or the user's).

    Without it the first ``init`` trusts whatever package the registry or a mirror serves
    and records its checksums; with it Terraform installs only the pinned release's
    official packages. An existing lock is Terraform's (``init -upgrade`` rewrites it) and
    is kept.
    """
    target = module / LOCK_FILE
    if target.exists():
        return
    chosen = os.environ.get(LOCK_ENV)
    source = Path(chosen) if chosen else data_dir("terraform") / "provider.lock.hcl"
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or e
        if chosen:
            raise UsageError(f"{LOCK_ENV}={chosen}: cannot read this provider lock file "
                             f"({reason}); point it at a .terraform.lock.hcl or unset it "
                             "to use the one provision ships") from e
        raise ProvisionError(f"cannot read {source} ({reason}); reinstall provision") from e
    write_file(target, text)


@dataclass
class Workspace:
    """A rendered root module and how to run Terraform on it."""

    engine: Engine
    module: Path
    env: dict[str, str] = field(default_factory=dict)
    on_event: OnEvent | None = None
    # Addresses every plan forces to be replaced (Terraform's -replace; `up --replace`).
    replace: tuple[str, ...] = ()
    # Terraform's -parallelism for plan and apply (infra/parallelism.py); None: its default.
    parallelism: int | None = None

    def _parallelism(self) -> list[str]:
        return [] if self.parallelism is None else [f"-parallelism={self.parallelism}"]

    def _run(self, *args: str, ok: tuple[int, ...] = (0,), what: str = "") -> RunResult:
        result = runner.run(self.engine, args, self.module, self.env, self.on_event)
        if result.returncode not in ok:
            raise InfraError(f"terraform {what or args[0]} failed:\n"
                             + describe_diagnostics(result))
        return result

    def init(self) -> None:
        """Install the provider and configure the state backend, unless already done.

        ``init`` is skipped when the module's provider requirements and backend are the ones
        the last successful init saw (a stamp in .terraform/): it costs a Terraform start on
        every command otherwise.
        """
        seed_provider_lock(self.module)
        stamp = self.module / ".terraform" / "provision-init.sha256"
        digest = self._init_digest()
        if (stamp.is_file() and stamp.read_text() == digest
                and (self.module / LOCK_FILE).is_file()):
            return
        self._run("init", "-input=false", "-no-color")
        stamp.parent.mkdir(exist_ok=True)
        stamp.write_text(digest)

    def _init_digest(self) -> str:
        hasher = hashlib.sha256()
        for name in ("versions.tf", "backend.tf.json"):
            path = self.module / name
            hasher.update(path.read_bytes() if path.is_file() else b"-")
        return hasher.hexdigest()

    def plan(self, planfile: Path, destroy: bool = False,
             variables: dict[str, Any] | None = None) -> RunResult:
        """Plan into ``planfile``; refreshes state against the cloud first.

        ``variables`` go on the command line (``-var``), which takes precedence over
        terraform.tfvars.json and any ``*.auto.tfvars`` (Terraform's "Variable Definition
        Precedence"): one step of a rolling replacement overrides the worker set so.
        Secret values never go here (the command line is visible to other users).
        """
        args = ["plan", "-input=false", "-json", f"-lock-timeout={LOCK_TIMEOUT}",
                *self._parallelism(), f"-out={planfile}"]
        if destroy:
            args.append("-destroy")
        else:
            args.extend(f"-replace={address}" for address in self.replace)
        for name, value in (variables or {}).items():
            args.append(f"-var={name}={json.dumps(value, sort_keys=True)}")
        return self._run(*args, what="destroy plan" if destroy else "plan")

    def show(self, planfile: Path) -> dict[str, Any]:
        """The machine-readable form of a saved plan."""
        return self._json("show", "-json", str(planfile))

    def apply(self, planfile: Path) -> RunResult:
        """Apply exactly the saved plan."""
        return self._run("apply", "-input=false", "-json", f"-lock-timeout={LOCK_TIMEOUT}",
                         *self._parallelism(), str(planfile), what="apply")

    @staticmethod
    def streamed_outputs(result: RunResult) -> dict[str, Any] | None:
        """Output values from an apply's own ``outputs`` event (saves an ``output`` run)."""
        for event in reversed(result.events):
            if event.get("type") == "outputs" and isinstance(event.get("outputs"), dict):
                values = event["outputs"]
                if all("value" in v for v in values.values()):
                    return {name: v["value"] for name, v in values.items()}
        return None

    def outputs(self) -> dict[str, Any]:
        """Output values by name (``terraform output -json``)."""
        raw = self._json("output", "-json")
        return {name: value.get("value") for name, value in raw.items()}

    def _json(self, *args: str) -> dict[str, Any]:
        result = runner.run(self.engine, args, self.module, self.env)
        if result.returncode != 0:
            raise InfraError(f"terraform {args[0]} failed:\n" + describe_diagnostics(result))
        text = "".join(e["@message"] + "\n" if e.get("type") == "text" else json.dumps(e)
                       for e in result.events)
        try:
            value = json.loads(text) if text.strip() else {}
        except ValueError as e:
            raise InfraError(f"terraform {args[0]} printed something that is not JSON") from e
        if not isinstance(value, dict):
            raise InfraError(f"terraform {args[0]} printed {type(value).__name__}, not an object")
        return value
