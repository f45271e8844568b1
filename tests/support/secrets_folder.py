"""A work folder's secrets, made as provision makes them, for tests of what reads them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from provisioner.bootstrap.pki import make_secrets, read_secrets, save_secrets


def prepared_with_secrets(folder: Path, cluster: str = "prod") -> SimpleNamespace:
    """What join_credentials needs of a Prepared: new secrets saved in ``folder`` and read
    back as a run reads them (``.secrets``), and the folder (``.work.secrets``)."""
    save_secrets(folder, make_secrets(cluster))
    secrets = read_secrets(folder)
    assert secrets is not None
    return SimpleNamespace(secrets=secrets, work=SimpleNamespace(secrets=folder))
