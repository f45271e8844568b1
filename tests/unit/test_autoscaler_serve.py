"""The service's entry point refuses bad input with one line and exit 2, never a traceback,
and never prints the DigitalOcean token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provisioner.autoscaler import serve
from provisioner.errors import UsageError
from tests.unit.test_autoscaler_settings import sample


def run(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str]:
    code = serve.main(["--settings", str(path)])
    err = capsys.readouterr().err
    return code, err


def test_a_missing_settings_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, tmp_path / "nope.json")
    assert code == 2
    assert err.strip().splitlines() == [
        f"provision-autoscaler: {tmp_path / 'nope.json'}: cannot read the settings file: "
        "No such file or directory"]


def test_an_empty_token_file_is_named_not_shown(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    data = sample()
    data["do_token_file"] = str(tmp_path / "token")
    (tmp_path / "token").write_text("\n")
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    code, err = run(capsys, path)
    assert code == 2
    assert err.strip() == (f"provision-autoscaler: the DigitalOcean token file "
                           f"{tmp_path / 'token'} is empty")


def test_secret_values_must_be_strings(tmp_path: Path) -> None:
    path = tmp_path / "values.json"
    path.write_text(json.dumps({"ca_cert_hash": 1}))
    with pytest.raises(UsageError, match="a JSON object of strings"):
        serve.secret_values(str(path))
