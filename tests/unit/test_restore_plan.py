"""`provision restore`'s refusals that need no cloud: the plan it accepts, the URL's size.

A restore replaces the control-plane droplets and nothing else (the project that lists every
droplet's URN follows them); anything more is drift or an edited file, refused with exit 3
before anything is applied, and a plan that would create the API endpoint means the state
does not hold it: exit 2, a restore never makes a new endpoint.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from provisioner.cloud.presign import presigned_get
from provisioner.config import load_environment
from provisioner.config.model import Backups
from provisioner.errors import UsageError
from provisioner.infra.changes import Change, InfraPlan
from provisioner.pipeline import restore_staging
from provisioner.pipeline.infra_stage import PolicyError
from provisioner.pipeline.prepare import Prepared
from provisioner.pipeline.restore import check_plan
from provisioner.render.artefacts import RESTORE_URL_BYTES
from tests.support.rendering import ROOT

CONFIG = ROOT / "examples" / "production.yaml"


def _prepared() -> Prepared:
    return Prepared(CONFIG, load_environment(CONFIG), None, None)  # type: ignore[arg-type]


def _cp(i: int, action: str) -> Change:
    return Change(f"digitalocean_droplet.controllers[{i}]", "digitalocean_droplet", action,
                  f"prod-cp-{i + 1}")


PROJECT = Change("digitalocean_project_resources.this[0]", "digitalocean_project_resources",
                 "update", "Acme Production")


def test_every_controller_replaced_and_the_project_following_is_accepted() -> None:
    check_plan(InfraPlan((_cp(0, "replace"), _cp(1, "replace"), _cp(2, "create"), PROJECT)),
               _prepared(), replacing=True)


def test_any_other_change_is_refused_with_exit_3() -> None:
    drift = Change("digitalocean_firewall.workers", "digitalocean_firewall", "update",
                   "prod-workers")
    with pytest.raises(PolicyError, match=r"prod-workers \(update\).*provision up") as e:
        check_plan(InfraPlan((_cp(0, "replace"), _cp(1, "replace"), _cp(2, "replace"),
                              drift)), _prepared(), replacing=True)
    assert e.value.exit_code == 3


def test_a_worker_replaced_with_the_controllers_is_refused() -> None:
    worker = Change('digitalocean_droplet.workers["general-1-1"]', "digitalocean_droplet",
                    "replace", "prod-general-1-1")
    with pytest.raises(PolicyError, match="prod-general-1-1"):
        check_plan(InfraPlan((_cp(0, "replace"), _cp(1, "replace"), _cp(2, "replace"),
                              worker)), _prepared(), replacing=True)


def test_a_controller_left_out_is_refused() -> None:
    with pytest.raises(PolicyError, match=r"controllers\[2\] missing"):
        check_plan(InfraPlan((_cp(0, "replace"), _cp(1, "replace"))), _prepared(),
                   replacing=True)


def test_finishing_creates_controllers_and_never_touches_the_first() -> None:
    check_plan(InfraPlan((_cp(2, "create"), PROJECT)), _prepared(), replacing=False)
    for action in ("replace", "delete", "update"):
        with pytest.raises(PolicyError, match="prod-cp-1, the first control-plane droplet"):
            check_plan(InfraPlan((_cp(0, action), _cp(2, "create"))), _prepared(),
                       replacing=False)


def test_finishing_replaces_a_controller_the_interrupted_apply_left_tainted() -> None:
    """A create whose wait until active failed stays in the state as tainted, and the next
    plan replaces it (Terraform's "tainted, so must be replaced"): the most common way an
    apply fails. Finishing the restore replaces it, any but the first."""
    check_plan(InfraPlan((_cp(1, "replace"), _cp(2, "create"), PROJECT)), _prepared(),
               replacing=False)
    worker = Change('digitalocean_droplet.workers["general-1-1"]', "digitalocean_droplet",
                    "replace", "prod-general-1-1")
    with pytest.raises(PolicyError, match="prod-general-1-1"):
        check_plan(InfraPlan((_cp(1, "replace"), worker)), _prepared(), replacing=False)


def test_a_plan_creating_the_endpoint_is_refused_with_exit_2() -> None:
    ip = Change("digitalocean_reserved_ip.api[0]", "digitalocean_reserved_ip", "create", "")
    with pytest.raises(UsageError, match="never creates one") as e:
        check_plan(InfraPlan((_cp(0, "replace"), _cp(1, "replace"), _cp(2, "replace"), ip)),
                   _prepared(), replacing=True)
    assert e.value.exit_code == 2


def test_a_url_longer_than_the_user_data_holds_is_refused_before_any_upload(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No bucket answers here: a refusal after an upload attempt would be a SpacesError."""
    monkeypatch.setenv("SPACES_ACCESS_KEY_ID", "DO00EXAMPLE")
    monkeypatch.setenv("SPACES_SECRET_ACCESS_KEY", "secret")
    backups = Backups("b", "fra1", "http://127.0.0.1:9", "p" * RESTORE_URL_BYTES, 3600)
    with pytest.raises(UsageError, match=f"more than the {RESTORE_URL_BYTES}"):
        restore_staging.stage(backups, "20260307T030000Z-prod-cp-1", b"snapshot")
    short = Backups("b", "fra1", "https://fra1.digitaloceanspaces.com", "production", 3600)
    key = restore_staging.copy_key(short, "20261207T100000Z-prod-cp-1")
    url = presigned_get(short.endpoint, short.bucket, key, "DO00" + "X" * 16, "s",
                        dt.datetime.now(dt.UTC), restore_staging.URL_SECONDS)
    assert len(url) < RESTORE_URL_BYTES, "a usual Spaces URL fits"


def test_restore_takes_parallelism_as_up_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """`restore` replaces droplets through Terraform: --parallelism (and
    PROVISION_PARALLELISM) reach the engine as they do for up, plan and destroy."""
    from click.testing import CliRunner

    from provisioner.cli.main import cli
    from provisioner.pipeline import restore as core

    seen = []

    def fake_restore(config: Path, workdir: Path | None, engine: object, *rest: object,
                     **options: object) -> None:
        seen.append(engine)
        raise core.RestoreDeclined("stop here")

    monkeypatch.setattr(core, "restore", fake_restore)
    result = CliRunner().invoke(cli, ["restore", str(CONFIG), "--snapshot", "latest",
                                      "--parallelism", "7", "--yes"])
    assert result.exit_code == 1, result.output
    assert [getattr(e, "parallelism", None) for e in seen] == [7]
    result = CliRunner(env={"PROVISION_PARALLELISM": "9"}).invoke(
        cli, ["restore", str(CONFIG), "--snapshot", "latest", "--yes"])
    assert [getattr(e, "parallelism", None) for e in seen] == [7, 9]
