"""`render --out DIR` prunes only files provision itself wrote there and that are unchanged.

The index DIR/.provision-files is a file on disk anyone can write: it must never make
provision delete a user's file, whatever it lists (a hand-made list, `../` paths, absolute
paths, paths through a symlink), nor a file provision wrote and the user has since edited.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from provisioner.cli.main import cli
from provisioner.render.writer import INDEX, INDEX_HEADER, read_index
from tests.support.rendering import ROOT


def _render(config: Path, out: Path) -> None:
    result = CliRunner().invoke(cli, ["render", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "env.yaml"
    path.write_text((ROOT / "examples" / "staging.yaml").read_text())
    return path


def test_index_records_each_file_with_its_hash(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _render(config, out)
    index = read_index(out)
    assert "terraform/versions.tf" in index
    for relative, digest in index.items():
        assert _sha((out / relative).read_bytes()) == digest, relative
    assert (out / INDEX).read_text().splitlines()[0] == INDEX_HEADER


def test_a_removed_apps_manifest_is_still_pruned(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _render(config, out)
    assert (out / "manifests" / "app-api.yaml").exists()
    data = yaml.safe_load(config.read_text())
    del data["apps"]
    data["deploy_policy"] = {}
    config.write_text(yaml.safe_dump(data))
    _render(config, out)
    assert not (out / "manifests" / "app-api.yaml").exists()


@pytest.mark.parametrize("style", ["old-format", "forged-hash"])
def test_a_users_file_in_a_hand_made_index_is_kept(config: Path, tmp_path: Path,
                                                   style: str) -> None:
    out = tmp_path / "out"
    (out / "notes").mkdir(parents=True)
    mine = out / "notes" / "mine.txt"
    mine.write_text("my notes\n")
    if style == "old-format":  # what provision wrote before: bare names, no hashes
        (out / INDEX).write_text("notes/mine.txt\nterraform/versions.tf\n")
    else:
        (out / INDEX).write_text(f"{INDEX_HEADER}\n{'0' * 64} notes/mine.txt\n")
    _render(config, out)
    assert mine.read_text() == "my notes\n"


def test_a_file_provision_wrote_and_the_user_edited_is_kept(config: Path,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "out"
    _render(config, out)
    edited = out / "manifests" / "app-api.yaml"
    edited.write_text(edited.read_text() + "# my change\n")
    data = yaml.safe_load(config.read_text())
    del data["apps"]
    data["deploy_policy"] = {}
    config.write_text(yaml.safe_dump(data))
    _render(config, out)
    assert edited.read_text().endswith("# my change\n")


def test_paths_outside_the_folder_are_never_deleted(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "deep" / "out"
    out.mkdir(parents=True)
    outside = tmp_path / "deep" / "precious.txt"
    outside.write_text("precious\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "linked.txt").write_text("linked\n")
    os.symlink(elsewhere, out / "link")
    digest = _sha(b"precious\n")
    (out / INDEX).write_text(
        f"{INDEX_HEADER}\n"
        f"{digest} ../precious.txt\n"
        f"{digest} {outside}\n"
        f"{digest} manifests/../../precious.txt\n"
        f"{_sha(b'linked' + bytes([10]))} link/linked.txt\n")
    _render(config, out)
    assert outside.read_text() == "precious\n"
    assert (elsewhere / "linked.txt").read_text() == "linked\n"


@pytest.mark.parametrize("garbage", [b"\xff\xfe\x00garbage", b"", b"\n\n\n"])
def test_a_garbage_index_prunes_nothing_and_is_replaced(config: Path, tmp_path: Path,
                                                        garbage: bytes) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("keep\n")
    (out / INDEX).write_bytes(garbage)
    _render(config, out)
    assert (out / "keep.txt").read_text() == "keep\n"
    assert read_index(out)


def test_a_directory_where_a_file_goes_is_a_clear_error(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "terraform" / "versions.tf").mkdir(parents=True)
    result = CliRunner().invoke(cli, ["render", str(config), "--out", str(out)])
    assert result.exit_code == 2, result.stderr
    assert result.stderr.strip() == (f"error: {out / 'terraform' / 'versions.tf'} is not a "
                                     "regular file; move it away and run again")
