"""Terraform commands on one rendered root module: init, plan, show, apply, output.

Every command streams through the runner, so the caller's ``on_event`` sees resource
progress live, and every failure becomes an :class:`InfraError` that names the resource and
quotes the provider's own error.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioner.errors import ProvisionError
from provisioner.infra import runner
from provisioner.infra.engine import Engine
from provisioner.infra.runner import OnEvent, RunResult

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
        # Without -json (init), Terraform writes its errors to stderr and progress to
        # stdout: the error, when there is one, is what says why (e.g. a damaged state file).
        errors = [line for line in result.stderr.strip().splitlines() if line.strip()][-5:]
        tail = [e["@message"] for e in result.events if e.get("type") == "text"][-5:]
        lines = [f"  {line}" for line in (errors or tail)]
    return "\n".join(dict.fromkeys(lines))  # Terraform repeats some diagnostics per resource


@dataclass
class Workspace:
    """A rendered root module and how to run Terraform on it."""

    engine: Engine
    module: Path
    env: dict[str, str] = field(default_factory=dict)
    on_event: OnEvent | None = None

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
        stamp = self.module / ".terraform" / "provision-init.sha256"
        digest = self._init_digest()
        if (stamp.is_file() and stamp.read_text() == digest
                and (self.module / ".terraform.lock.hcl").is_file()):
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

    def plan(self, planfile: Path, destroy: bool = False) -> RunResult:
        """Plan into ``planfile``; refreshes state against the cloud first."""
        args = ["plan", "-input=false", "-json", f"-lock-timeout={LOCK_TIMEOUT}",
                f"-out={planfile}"]
        if destroy:
            args.append("-destroy")
        return self._run(*args, what="destroy plan" if destroy else "plan")

    def show(self, planfile: Path) -> dict[str, Any]:
        """The machine-readable form of a saved plan."""
        return self._json("show", "-json", str(planfile))

    def apply(self, planfile: Path) -> RunResult:
        """Apply exactly the saved plan."""
        return self._run("apply", "-input=false", "-json", f"-lock-timeout={LOCK_TIMEOUT}",
                         str(planfile), what="apply")

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
