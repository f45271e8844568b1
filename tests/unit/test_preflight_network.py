"""Preflight when the network or the DigitalOcean edge misbehaves, over real HTTP.

python-digitalocean 1.17.0 (site-packages digitalocean/, whose ``__init__.py`` still says
``__version__ = "1.16.0"``): ``baseapi.py`` defines ``Error``, ``TokenError``,
``DataReadError``, ``JSONReadError``, ``NotFoundError`` and ``EndPointError``, but
``__init__.py`` imports only ``Error, EndPointError, TokenError, DataReadError,
NotFoundError`` from it, so ``digitalocean.JSONReadError`` is an AttributeError.
``BaseAPI.get_data`` raises ``JSONReadError`` when a response body is not JSON
(``req.json()`` raising ValueError); a connection closed without an answer reaches the
caller as requests' ``ConnectionError`` (the session mounts no retrying adapter).
A 502 HTML page is what the Cloudflare edge in front of api.digitalocean.com answers when
the API fails (see tests/fakes/doapi/faults.py, ``Faults.garble``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import digitalocean
import pytest
from click.testing import CliRunner
from digitalocean import baseapi

from provisioner.cli.main import cli
from provisioner.cloud import preflight
from provisioner.errors import UsageError
from tests.fakes.doapi import FakeDigitalOcean
from tests.support.rendering import ROOT

TOKEN = "preflight-network-token"


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDigitalOcean]:
    with FakeDigitalOcean(tmp_path / "account.json", TOKEN) as api:
        api.seed()
        for name, value in api.env().items():
            monkeypatch.setenv(name, value)
        yield api


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr("provisioner.cloud.preflight.time.sleep", slept.append)
    return slept


def test_the_library_layout_this_relies_on() -> None:
    """The fact behind the bug: JSONReadError lives in baseapi and is not exported."""
    assert not hasattr(digitalocean, "JSONReadError")
    assert issubclass(baseapi.JSONReadError, digitalocean.Error)


@pytest.mark.parametrize("fault", ["drop", "garble"])
def test_preflight_retries_and_then_reads_the_account(fake: FakeDigitalOcean,
                                                     sleeps: list[float], fault: str) -> None:
    getattr(fake.faults, fault)(3)
    view = preflight.read_account(TOKEN)
    assert view.regions, "the account was read once the API answered properly"
    assert sleeps == [1.0, 2.0, 4.0], "three failed attempts, each followed by a backoff"
    assert fake.faults.dropped == fake.faults.garbled == 0


@pytest.mark.parametrize(("fault", "named"), [("drop", "ConnectionError"),
                                              ("garble", "JSONReadError")])
def test_preflight_gives_up_with_one_clear_line(fake: FakeDigitalOcean, sleeps: list[float],
                                               fault: str, named: str) -> None:
    getattr(fake.faults, fault)(1000)
    with pytest.raises(preflight.PreflightError) as caught:
        preflight.read_account(TOKEN)
    message = str(caught.value)
    assert message.startswith("cannot reach the DigitalOcean API to read the account")
    assert named in message and "\n" not in message
    assert len(sleeps) == 3


def test_plan_reports_an_unreachable_api_as_a_cloud_failure(
        fake: FakeDigitalOcean, sleeps: list[float], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the CLI: exit 1, one line, no internal error, nothing planned."""
    monkeypatch.setenv("DIGITALOCEAN_TOKEN", TOKEN)
    monkeypatch.setenv("PROVISION_FAILOVER_TOKEN", "scoped")
    fake.faults.drop(1000)
    result = CliRunner().invoke(cli, ["plan", str(ROOT / "examples" / "staging.yaml"),
                                      "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: cannot reach the DigitalOcean API to read the account")
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    # The CA and its fingerprint record may be made first (the custody of the secrets comes
    # before any cloud call); nothing was planned or applied.
    assert not (tmp_path / "w" / "state" / "terraform.tfstate").exists()
    assert not list((tmp_path / "w").glob("plans/*"))


def test_an_end_point_that_is_not_a_url_is_a_usage_error(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    monkeypatch.setenv("DIGITALOCEAN_END_POINT", "not a url")
    with pytest.raises(UsageError, match="DIGITALOCEAN_END_POINT 'not a url' is not"):
        preflight.read_account(TOKEN)
    assert os.environ["DIGITALOCEAN_END_POINT"] == "not a url"
