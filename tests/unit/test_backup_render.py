"""With `backups:`, each control-plane node gets the etcd backup agent, its settings and timer
(the shared contract of issue 15: paths, JSON keys, timer periods); without it, nothing."""

from __future__ import annotations

import json
from typing import Any

import yaml

from provisioner.render import cloudinit
from tests.support.rendering import NodeFile, example, materialize, on_node, rendered

SERVICE = "/etc/systemd/system/provision-etcd-backup.service"
TIMER = "/etc/systemd/system/provision-etcd-backup.timer"
SETTINGS = "/etc/provision/etcd-backup.json"
AGENT = "/usr/local/lib/provision/etcd_backup.py"


def _files(name: str, role: str) -> dict[str, NodeFile]:
    """The role's files as the node gets them (cloud-init's and the unpacked bundle's)."""
    config: dict[str, Any] = yaml.safe_load(
        materialize(rendered(name)[f"cloud-init/{role}.yaml"]))
    return on_node(config)


def test_control_plane_roles_carry_agent_settings_and_timer() -> None:
    for role in ("controller-init", "controller-join"):
        files = _files("production", role)
        assert files[AGENT].mode == 0o755
        assert files[SETTINGS].mode == 0o644
        assert json.loads(files[SETTINGS].content) == {
            "environment": "prod", "endpoint": "https://fra1.digitaloceanspaces.com",
            "region": "fra1", "bucket": "acme-etcd-backups", "prefix": "production",
            "every_seconds": 3600, "keep_hourly": 24, "keep_daily": 14}
        service = files[SERVICE].content
        assert "Type=oneshot" in service
        assert f"ExecStart=/usr/bin/python3 {AGENT} run" in service
        timer = files[TIMER].content
        for line in ("OnBootSec=2min", "OnUnitActiveSec=60s", "AccuracySec=10s"):
            assert line in timer.splitlines(), line
        bootstrap = files["/usr/local/sbin/provision-bootstrap"].content
        assert "readonly ETCD_BACKUP=yes" in bootstrap
        assert "systemctl enable --now provision-etcd-backup.timer" in bootstrap


def test_no_secret_in_the_settings() -> None:
    settings = cloudinit.backup_settings(example("production"))
    assert settings is not None
    assert not any("key" in name and "keep" not in name for name in settings)


def test_workers_and_environments_without_backups_get_none() -> None:
    worker = _files("production", "worker-general")
    assert not {AGENT, SETTINGS, SERVICE, TIMER} & set(worker)
    assert "readonly ETCD_BACKUP=no" in worker["/usr/local/sbin/provision-bootstrap"].content
    assert example("staging").backups is None
    staging = _files("staging", "controller-init")
    assert not {AGENT, SETTINGS, SERVICE, TIMER} & set(staging)
    assert "readonly ETCD_BACKUP=no" in staging["/usr/local/sbin/provision-bootstrap"].content
