"""The work folder: where one environment's rendered files, secrets and state live.

By default ``.provision/<name>/`` beside the environment file, so two environments never
share one and the folder travels with the config it came from. It is the hand-off between
stages and between runs.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from provisioner.bootstrap.custody import cluster_secrets
from provisioner.bootstrap.pki import ClusterSecrets
from provisioner.config.model import Environment
from provisioner.errors import WorkdirError
from provisioner.lock import exclusive
from provisioner.render.writer import write_file, write_tree

_GITIGNORE = "# Rendered files, cluster secrets and Terraform state: never commit these.\n*\n"


@dataclass(frozen=True)
class Workdir:
    """Paths inside one environment's work folder."""

    root: Path

    @classmethod
    def for_config(cls, config: Path, env: Environment, override: Path | None) -> Workdir:
        """The folder for ``env`` loaded from ``config``, or the user's ``--workdir``.

        Always absolute: Terraform runs with the module folder as its working folder, so a
        relative path handed to it (a plan file, say) would point somewhere else entirely.
        """
        root = override if override is not None else config.parent / ".provision" / env.name
        return cls(root.resolve())

    @property
    def rendered(self) -> Path:
        """Where render output goes (terraform/, cloud-init/, manifests/)."""
        return self.root

    @property
    def secrets(self) -> Path:
        """0700 folder of generated secrets."""
        return self.root / "secrets"

    def write_rendered(self, files: dict[str, str]) -> list[Path]:
        """Write rendered files and the .gitignore that keeps the folder out of git."""
        written = write_tree(self.rendered, files)
        self._gitignore()
        return written

    def locked(self, command: str) -> AbstractContextManager[None]:
        """This folder for one run alone (see provisioner.lock); made if missing."""
        self._gitignore()
        return exclusive(self.root, command)

    def _gitignore(self) -> None:
        gitignore = self.root / ".gitignore"
        if not gitignore.exists():
            write_file(gitignore, _GITIGNORE)

    def cluster_secrets(self, env: Environment) -> ClusterSecrets:
        """The environment's CA and join credentials: checked against the record beside the
        state, restored from remote state, or made on first use (bootstrap/custody.py)."""
        found = cluster_secrets(self.secrets, self.root / "state", env)
        if found is None:  # online they are always restored or made; never reached
            raise WorkdirError(f"no cluster secrets in {self.secrets}")
        return found

    def offline_secrets(self, env: Environment) -> ClusterSecrets | None:
        """As :meth:`cluster_secrets` without the network: None if kept only remotely."""
        return cluster_secrets(self.secrets, self.root / "state", env, online=False)
