"""The simulated account's reads: cheap when nothing changed, never stale when it did.

A no-op `terraform plan` refreshes every managed resource, one ReadResource each
(Terraform's refresh walk). The fake provider used to load, re-serialise and compare the
whole account file for every one of them; at 500 droplets the file holds megabytes of
user-data (the account keeps each droplet's, tests/fakes/doprovider/resources/compute.py),
so the fake alone took most of a minute of a no-op plan, which a user of the real
DigitalOcean API never pays. Reads now share the account decoded at the last load or save
while the file is the same one; these tests hold both halves of that: a read of an
unchanged account decodes nothing, and a change made by any writer, in this process or
another (the fake HTTP API runs in the test's process, Terraform's provider in its own),
is what the next read sees, so drift stays visible to `plan`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.doprovider.cloud import STATE_ENV, Cloud
from tests.fakes.doprovider.resources import resource_for
from tests.fakes.doprovider.servicer import ProviderServicer
from tests.support.rendering import ROOT

DROPLETS = "digitalocean_droplet"


@pytest.fixture
def account(tmp_path: Path) -> Cloud:
    cloud = Cloud(tmp_path / "account.json")
    with cloud.transaction() as a:
        a.put(DROPLETS, {"id": "1", "name": "prod-general-1", "size": "s-2vcpu-4gb"})
    return cloud


def _count_loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    loads: list[int] = []
    real = Cloud._load

    def counting(self: Cloud) -> dict[str, object]:
        loads.append(1)
        return real(self)

    monkeypatch.setattr(Cloud, "_load", counting)
    return loads


def test_refreshing_an_unchanged_account_decodes_it_once(
        account: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    """The provider's own refresh path (ReadResource -> Resource.read), 50 droplets' worth."""
    monkeypatch.setenv(STATE_ENV, str(account.path))
    servicer = ProviderServicer()
    servicer.token = "sim-token"
    loads = _count_loads(monkeypatch)
    for _ in range(50):
        ctx = servicer._context(DROPLETS)
        refreshed = resource_for(DROPLETS).read(ctx, {"id": "1"})
        assert refreshed is not None and refreshed["name"] == "prod-general-1"
    assert len(loads) <= 1  # none when the fixture's own save is still the file


def test_a_change_in_this_process_is_read_without_loading_again(
        account: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    with account.reading() as a:
        assert a.get(DROPLETS, "1") is not None
    loads = _count_loads(monkeypatch)
    with account.transaction() as a:  # e.g. the fake API deleting the droplet
        a.delete(DROPLETS, "1")
    with account.reading() as a:
        assert a.get(DROPLETS, "1") is None
    assert loads == []  # the transaction kept what it saved


def test_a_change_by_another_process_is_what_the_next_read_sees(account: Cloud) -> None:
    with account.reading() as a:
        assert a.get(DROPLETS, "1")["size"] == "s-2vcpu-4gb"  # type: ignore[index]
    # Another process (Terraform's provider, the fake API elsewhere) resizes the droplet;
    # same record count, nearly the same size of file: only the file's identity differs.
    script = ("import sys; from pathlib import Path; from tests.fakes.doprovider.cloud import "
              "Cloud\nwith Cloud(Path(sys.argv[1])).transaction() as a:\n"
              "    a.get('digitalocean_droplet', '1')['size'] = 's-4vcpu-8gb'\n")
    subprocess.run([sys.executable, "-c", script, str(account.path)], cwd=ROOT, check=True)
    with account.reading() as a:
        assert a.get(DROPLETS, "1")["size"] == "s-4vcpu-8gb"  # type: ignore[index]
    with account.transaction() as a:  # and a transaction starts from it too
        assert a.get(DROPLETS, "1")["size"] == "s-4vcpu-8gb"  # type: ignore[index]


def test_a_failed_transaction_leaves_no_half_change_for_readers(account: Cloud) -> None:
    with account.reading() as a:
        assert a.get(DROPLETS, "1") is not None
    with pytest.raises(RuntimeError), account.transaction() as a:
        a.delete(DROPLETS, "1")
        raise RuntimeError("the API call failed half-way")
    with account.reading() as a:  # the file never changed: the droplet is there
        assert a.get(DROPLETS, "1") is not None
    on_disk = json.loads(account.path.read_text())
    assert "1" in on_disk["resources"][DROPLETS]


def test_a_record_changed_after_its_transaction_reaches_neither_readers_nor_the_file(
        account: Cloud) -> None:
    """What a transaction hands out may outlive it (the fake API returns stored objects);
    changing it afterwards changed nothing before the cache, and must change nothing now."""
    with account.transaction() as a:
        escaped = a.get(DROPLETS, "1")
    assert escaped is not None
    escaped["size"] = "s-8vcpu-16gb"
    with account.reading() as a:
        assert a.get(DROPLETS, "1")["size"] == "s-2vcpu-4gb"  # type: ignore[index]
    with account.transaction() as a:
        a.put(DROPLETS, {"id": "2", "name": "prod-general-2", "size": "s-2vcpu-4gb"})
    on_disk = json.loads(account.path.read_text())
    assert on_disk["resources"][DROPLETS]["1"]["size"] == "s-2vcpu-4gb"
