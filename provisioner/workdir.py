"""The work folder: where one environment's rendered files, secrets and state live.

By default ``.provision/<name>/`` beside the environment file, so two environments never
share one and the folder travels with the config it came from. It is the hand-off between
stages and between runs.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from provisioner.bootstrap.custody import cluster_secrets
from provisioner.bootstrap.pki import ClusterSecrets
from provisioner.cloud.tags import RESERVED_PREFIX
from provisioner.config.model import Environment
from provisioner.errors import WorkdirError
from provisioner.lock import exclusive
from provisioner.render.writer import read_regular, write_file, write_tree

_GITIGNORE = "# Rendered files, cluster secrets and Terraform state: never commit these.\n*\n"
# The name of the environment whose folder this is: its state, secrets and records are that
# environment's, so another environment's file must never run in it (a destroy there would
# destroy the folder's environment, past a deletion protection only its own file sets).
OWNER_FILE = "environment"


@dataclass(frozen=True)
class Workdir:
    """Paths inside one environment's work folder."""

    root: Path
    name: str | None = field(default=None, compare=False)  # the environment it is for

    @classmethod
    def for_config(cls, config: Path, env: Environment, override: Path | None) -> Workdir:
        """The folder for ``env`` loaded from ``config``, or the user's ``--workdir``.

        Always absolute: Terraform runs with the module folder as its working folder, so a
        relative path handed to it (a plan file, say) would point somewhere else entirely.
        """
        root = override if override is not None else config.parent / ".provision" / env.name
        work = cls(root.resolve(), env.name)
        owner = work.owner()
        if owner is not None and owner != env.name:
            raise WorkdirError(
                f"the work folder {work.root} belongs to the environment {owner!r}, not to "
                f"{env.name!r} ({config}): its state and secrets are {owner!r}'s. Pass "
                f"{env.name!r}'s own folder to --workdir, or leave --workdir out "
                f"(default: .provision/{env.name}/ beside the file)")
        return work

    def owner(self) -> str | None:
        """The environment this folder belongs to: its record, or for a folder made before
        the record existed, the environment tag in its local Terraform state."""
        try:
            return read_regular(self.root / OWNER_FILE).decode("utf-8").strip() or None
        except FileNotFoundError:
            pass
        except (OSError, UnicodeDecodeError) as e:
            raise WorkdirError(f"cannot read {self.root / OWNER_FILE} (the name of the "
                               f"environment this folder belongs to): {e}") from e
        try:
            state = json.loads(read_regular(self.root / "state" / "terraform.tfstate"))
            for resource in state["resources"]:
                if (resource.get("type"), resource.get("name")) == ("digitalocean_tag",
                                                                     "cluster"):
                    tag = str(resource["instances"][0]["attributes"]["name"])
                    if tag.startswith(RESERVED_PREFIX):
                        return tag.removeprefix(RESERVED_PREFIX)
        except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError):
            pass  # no readable local state: nothing to go by (Terraform reports a damaged one)
        return None

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
        if self.name is not None and not (self.root / OWNER_FILE).exists():
            write_file(self.root / OWNER_FILE, self.name + "\n")
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

