"""The node agents travel in user-data as their code without docstrings, and it still fits.

A role's agents (with the backup settings and the add-on kustomizations that carry no
late-bound value) are one gzip-compressed tar that cloud-init writes (``encoding: b64``,
cloudinit/config/cc_write_files.py, ``extract_contents``) and the bootstrap script unpacks;
tests/support/rendering.on_node unpacks it with the script's own tar command.
DigitalOcean refuses user-data over 64 KiB, the limit provisioner/render/artefacts.py
enforces with the late values at their longest.
"""

from __future__ import annotations

import ast
import base64
import gzip
import io
import re
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.config import load_environment
from provisioner.config.model import Backups
from provisioner.render import artefacts, cloudinit, shell
from provisioner.render.agents import shipped_text
from tests.support.agents import (
    AGENTS,
    CONTROL_PLANE_ONLY,
    EVERY_NODE,
    NAMES,
    ON_NODE,
    assert_ships,
)
from tests.support.rendering import (
    BOOTSTRAP,
    NodeFile,
    example,
    example_document,
    materialize,
    on_node,
    rendered,
    written,
)

# Room kept under the limit for what the next change adds before anyone measures again.
MARGIN = 4 * 1024
ROLES = ("controller-init", "controller-join", "worker-general")


def _config(role: str) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(
        materialize(rendered("production")[f"cloud-init/{role}.yaml"]))
    return config


def _shipped(role: str) -> dict[str, NodeFile]:
    return on_node(_config(role))


@pytest.mark.parametrize("role", ["controller-init", "controller-join"])
@pytest.mark.parametrize("name", NAMES)
def test_each_agent_ships_as_its_code_minus_docstrings(role: str, name: str) -> None:
    files = _shipped(role)
    shipped = files[ON_NODE[name]]
    assert shipped.mode == 0o755, (name, oct(shipped.mode))
    assert_ships(shipped.content, name)
    source = (AGENTS / f"{name}.py").read_text(encoding="utf-8")
    if ast.get_docstring(ast.parse(source)) is not None:
        assert len(shipped.content) < len(source), name


def test_workers_ship_no_control_plane_agent() -> None:
    """A worker carries the upgrade agent (every node runs it) and none of the agents only
    a control-plane node runs."""
    files = _shipped("worker-general")
    assert not {ON_NODE[name] for name in CONTROL_PLANE_ONLY} & set(files)
    for name in EVERY_NODE:
        assert files[ON_NODE[name]].mode == 0o755
        assert_ships(files[ON_NODE[name]].content, name)


def test_a_check_that_can_fail() -> None:
    """The comparison catches a changed statement, not only a lost docstring."""
    source = (AGENTS / "csr_approver.py").read_text(encoding="utf-8")
    shipped = shipped_text(source)
    with pytest.raises(AssertionError):
        assert_ships(shipped.replace("return", "return None or", 1), "csr_approver")


@pytest.mark.parametrize("role", ROLES)
def test_the_bundle_is_the_same_bytes_on_every_render(role: str) -> None:
    """Renders stay byte-identical run to run: members owned by 0/0 with mtime 0, the gzip
    header's mtime 0, so Terraform sees no change in an unchanged environment."""
    env = example("production")
    first, second = cloudinit.all_roles(env), cloudinit.all_roles(env)
    assert [u.text for u in first] == [u.text for u in second]
    (entry,) = [f for f in _config(role)["write_files"]
                if f["path"] == cloudinit.BUNDLE]
    assert entry["permissions"] == "0600" and entry["encoding"] == "b64"
    packed = base64.b64decode(entry["content"])
    assert packed[4:8] == b"\0\0\0\0"  # gzip MTIME (RFC 1952, section 2.3.1)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(packed))) as tar:
        members = tar.getmembers()
    assert members and all(m.isfile() and m.uid == 0 and m.gid == 0 and m.mtime == 0
                           and not m.name.startswith("/") for m in members), members


def test_bootstrap_unpacks_the_bundle_before_any_agent_runs() -> None:
    """cloud-init 22.4.2 (config/cloud.cfg.tmpl as Debian ships it in /etc/cloud/cloud.cfg):
    ``write-files`` is a cloud_init_modules ('init' stage) module, ``runcmd`` a
    cloud_config_modules one that only writes the script ``scripts-user`` runs in the
    'final' stage; so the bundle (not ``defer``red) is on disk before the bootstrap script
    starts. The script unpacks it as its first step: before
    apt installs keepalived (whose drop-in's ExecStartPre runs the failover agent), before
    the floating IP claim and before it enables or starts any unit that runs an agent. The
    rendered script's text order is the evidence: nothing but the done-marker check and a
    log line comes before it in ``main``."""
    for role in ROLES:
        entries = {f["path"]: f for f in _config(role)["write_files"]}
        script = written(entries[BOOTSTRAP])
        main = script[script.index("\nmain() {"):]
        steps = [line.strip() for line in main.splitlines()[2:]
                 if line.strip() and not line.strip().startswith("#")]
        assert steps[:8] == ['if [[ -e "$DONE_MARKER" ]]; then', 'log "already bootstrapped"',
                             "return 0", "fi", 'log "bootstrapping Kubernetes $K8S_VERSION"',
                             "unpack_bundle", "systemctl daemon-reload", "prepare_kernel"], steps
        # systemd reads the unpacked units (and keepalived's drop-in) before apt installs
        # keepalived (its postinst starts it) and before the first enable: configure_containerd
        # enables containerd and kubelet, main enables the agents' timers.
        reload = main.index("systemctl daemon-reload")
        for later in ("install_packages", "configure_containerd", "run_kubeadm",
                      "systemctl enable", "systemctl start", "install_upgrade_agent"):
            assert main.index(later) > reload > main.index("unpack_bundle"), (role, later)
        # Each function that enables or starts a unit is called after the reload.
        functions = re.findall(r"^(\w+)\(\) \{\n(.*?)^\}", script, re.M | re.S)
        enabling = [name for name, body in functions if name != "main"
                    and re.search(r"systemctl (enable|start|restart)", body)]
        assert "configure_containerd" in enabling, enabling
        bodies = dict(functions)
        for name in enabling:
            # Called from main after the reload, or from a function that is (restore_nodes
            # restarts the kubelet from init_control_plane, from run_kubeadm).
            caller = name
            while f"\n  {caller}\n" not in main:
                (caller,) = [other for other, body in bodies.items()
                             if re.search(rf"^\s+{caller}$", body, re.M)]
            assert main.index(f"\n  {caller}\n") > reload, (role, name, caller)
        assert "systemctl" not in script[script.index("\nunpack_bundle() {"):
                                         script.index("\nprepare_kernel() {")]
        # The archive it unpacks is the one cloud-init writes.
        assert f"readonly BUNDLE={cloudinit.BUNDLE}\n" in script
        assert cloudinit.BUNDLE in entries


def test_kustomizations_with_late_values_stay_in_write_files() -> None:
    """Terraform splices late values into the user-data as written, so a kustomization that
    carries one (the CCM's, with the VPC id) stays a plain write_files entry; the others are
    packed. The node gets every one, 0644."""
    env = example("production")
    as_rendered = yaml.safe_load(rendered("production")["cloud-init/controller-init.yaml"])
    entries = {f["path"]: f["content"] for f in as_rendered["write_files"]
               if f["path"].startswith(cloudinit.ADDONS_DIR)}
    assert entries and all("@@provision:" in text for text in entries.values()), entries
    files = on_node(_config("controller-init"))
    expected = {f"{cloudinit.ADDONS_DIR}/{s['source']}/kustomization.yaml"
                for s in cloudinit.addon_sources(env) if s["kustomization"]}
    assert {p for p in files if p.startswith(cloudinit.ADDONS_DIR)} == expected
    packed = expected - set(entries)
    assert packed, "no kustomization travels packed"
    for path in expected:
        assert files[path].mode == 0o644
        assert "@@provision:" not in files[path].content
    assert not {p for p in _shipped("controller-join") if p.startswith(cloudinit.ADDONS_DIR)}


def test_production_with_backups_fits_with_margin(capsys: pytest.CaptureFixture[str]) -> None:
    env = example("production")
    assert isinstance(env.backups, Backups), "the example shows the backups section"
    estimates = {item.role: artefacts.estimate(item) for item in cloudinit.all_roles(env)}
    with capsys.disabled():
        print("\n[user-data] estimated bytes with late values: "
              + ", ".join(f"{role} {size}" for role, size in estimates.items())
              + f" (limit {artefacts.USER_DATA_LIMIT})")
    for role, size in estimates.items():
        assert size + MARGIN <= artefacts.USER_DATA_LIMIT, (role, size)


UNITS = "/etc/systemd/system/"


def test_units_without_late_values_travel_in_the_bundle(tmp_path: Path) -> None:
    """The agents' units and keepalived's drop-in carry no late value, so they are packed
    (0644, the node gets them at the same paths: rendering.on_node); the approver's service
    names the floating IP (a marker) and stays a write_files entry. With a load balancer it
    has no marker and is packed too."""
    as_rendered = yaml.safe_load(rendered("production")["cloud-init/controller-init.yaml"])
    entries = {f["path"]: f["content"] for f in as_rendered["write_files"]}
    on_disk = on_node(_config("controller-init"))
    packed = {"provision-failover.service", "provision-failover.timer",
              "keepalived.service.d/provision-failover.conf", "provision-csr-approver.timer",
              "provision-etcd-backup.service", "provision-etcd-backup.timer"}
    for name in packed:
        assert UNITS + name not in entries, name
        assert on_disk[UNITS + name].mode == 0o644, name
    approver = UNITS + "provision-csr-approver.service"
    assert "@@provision:api_endpoint@@" in entries[approver]
    assert on_disk[approver].mode == 0o644

    doc = example_document("production")
    # The checks a load-balanced API needs (config/load.py): no api_cidrs, no app named api.
    doc["control_plane"]["endpoint"] = "load_balancer"
    doc["access"]["api_cidrs"] = ["0.0.0.0/0"]
    doc.pop("apps", None)
    path = tmp_path / "lb.yaml"
    path.write_text(yaml.safe_dump(doc))
    text = cloudinit.controller(load_environment(path), first=True).text
    lb_entries = {f["path"] for f in yaml.safe_load(text)["write_files"]}
    assert not {p for p in lb_entries if p.startswith(UNITS)} - {
        UNITS + "provision-metadata-guard.service",
        UNITS + "do-agent.service.d/provision-metadata-guard.conf"}, lb_entries
    assert approver in on_node(yaml.safe_load(materialize(text)))


def _bash_view(script: str, tmp_path: Path) -> str:
    """What bash makes of a bootstrap script: every function as bash prints it back
    (``declare -f`` prints bodies without comments) and every read-only value the script
    sets, sourced without its final ``main "$@"`` call."""
    assert script.rstrip().endswith('\nmain "$@"')
    library = tmp_path / "library.sh"
    library.write_text(script.rstrip().removesuffix('main "$@"'))
    done = subprocess.run(["bash", "-c", 'source "$0"; declare -f; readonly -p', str(library)],
                          capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return "\n".join(line for line in done.stdout.splitlines() if "PPID=" not in line)


@pytest.mark.parametrize("role", ROLES)
def test_bootstrap_ships_without_comments_and_bash_sees_the_same_script(
        role: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped bootstrap script drops its comment lines (render/shell.py), which saves
    about 2.7 KiB of the first node's user-data; bash reads the same functions and values
    from it as from the script with comments, and it still runs the same last line."""
    shipped = written({f["path"]: f for f in _config(role)["write_files"]}[BOOTSTRAP])
    monkeypatch.setattr(shell, "without_comments", lambda text: text)
    env = example("production")
    item = {i.role: i for i in cloudinit.all_roles(env)}[role]
    full = written({f["path"]: f for f in yaml.safe_load(materialize(item.text))["write_files"]}
                   [BOOTSTRAP])
    assert len(shipped) < len(full) * 0.85, (len(shipped), len(full))
    assert not [line for line in shipped.splitlines()[1:]
                if line.lstrip().startswith("#") and "shellcheck" not in line]
    assert _bash_view(shipped, tmp_path) == _bash_view(full, tmp_path)
