"""render/bundle.py: the archive a node unpacks, byte-stable, never with a late value."""

from __future__ import annotations

import base64
import gzip
import io
import tarfile

import pytest

from provisioner.errors import RenderError
from provisioner.render.bundle import Member, packed
from provisioner.render.markers import marker

MEMBERS = [Member("/usr/local/lib/provision/a.py", 0o755, "print('a')\n"),
           Member("/var/lib/provision/addons/01-x/kustomization.yaml", 0o644, "resources: []\n")]


def _text(tar: tarfile.TarFile, member: tarfile.TarInfo) -> str:
    data = tar.extractfile(member)
    assert data is not None, member.name
    return data.read().decode()


def test_members_keep_path_mode_text_and_order() -> None:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(base64.b64decode(packed(MEMBERS))))
                      ) as tar:
        found = [(m.name, m.mode, m.uid, m.gid, m.mtime, _text(tar, m))
                 for m in tar.getmembers()]
    assert found == [("usr/local/lib/provision/a.py", 0o755, 0, 0, 0, "print('a')\n"),
                     ("var/lib/provision/addons/01-x/kustomization.yaml", 0o644, 0, 0, 0,
                      "resources: []\n")]


def test_the_same_bytes_every_time() -> None:
    assert packed(MEMBERS) == packed(list(MEMBERS))


def test_a_late_value_is_never_packed() -> None:
    """Terraform splices late values into the user-data as written: inside the archive a
    marker would stay a marker on the node."""
    with pytest.raises(RenderError, match="late-bound"):
        packed([Member("/etc/x.json", 0o600, f'{{"token": "{marker("failover_token")}"}}')])


def test_a_relative_path_is_refused() -> None:
    with pytest.raises(RenderError, match="absolute"):
        packed([Member("etc/x", 0o644, "x\n")])


def test_a_name_ustar_cannot_hold_is_a_render_error_not_a_traceback() -> None:
    """USTAR keeps a name in 100 characters plus a 155-character prefix split at a slash
    (Python's tarfile raises ValueError beyond): provision says which file, as it does for
    any file it cannot render."""
    long = "/var/lib/provision/addons/" + "a" * 101  # one name past 100: no slash to split
    with pytest.raises(RenderError) as caught:
        packed([Member(long, 0o644, "x")])
    assert long in str(caught.value)
