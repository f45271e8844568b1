"""`provision image build`: a DigitalOcean droplet snapshot with the node installs done.

A temporary droplet boots the environment's base image with user-data that runs the node
bootstrap script in its "image" role (render/cloudinit.py ``image_builder``: containerd and
kubelet/kubeadm/kubectl of the environment's version installed and held, the control-plane
and add-on images pulled, ``/etc/provision/image.json`` written). How the command knows the
install finished: cloud-init's ``power_state`` powers the droplet off once cloud-init is done,
and only if the manifest exists (its ``condition``); the droplet has no other way to say so
without SSH, which provision does not use. So the command polls the droplet until its status
is ``off`` (a guest shutdown: the file system is flushed, unlike the ``power_off`` action,
"akin to a hard power cut" in the API reference), within a timeout. A failed install never
powers off: the timeout says so. Then the ``snapshot`` droplet action
(``POST /v2/droplets/{id}/actions``, ``{"type": "snapshot", "name": ...}``), polled until the
action completes, and the droplet is deleted.

On any failure, Ctrl-C or SIGTERM the droplet is deleted; one whose create answer was lost
is found by its tag and exact name. The tag is ``provision:<env>:image-build``
(cloud/ownership.py ``image_build_tag``): compared by equality, so no other environment's
build droplet is ever selected, and `destroy`'s sweep lists it as the environment's.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provisioner.cloud import throttle
from provisioner.cloud.apiref import api_ref
from provisioner.cloud.ownership import image_build_tag
from provisioner.cloud.preflight import read
from provisioner.config.model import Environment
from provisioner.errors import ProvisionError

Report = Callable[[str], None]
# Internal: tests shorten the poll interval (a real build takes minutes).
POLL_ENV = "PROVISION_IMAGE_POLL_SECONDS"
DEFAULT_POLL = 10.0
# 25 GB disk: a droplet made from a snapshot needs at least the snapshot's min_disk_size
# (the build droplet's disk), so the build uses the smallest common disk.
DEFAULT_SIZE = "s-1vcpu-1gb"
DEFAULT_TIMEOUT = 1800.0


class ImageBuildError(ProvisionError):
    """The image could not be built; the build droplet was deleted."""


@dataclass(frozen=True)
class Built:
    """The snapshot made."""

    name: str
    id: str
    region: str
    kubernetes: str


def snapshot_name(env: Environment, now: dt.datetime) -> str:
    """``provision-<env>-k8s-<version>-<UTC time>``: `plan` reads the version back from it."""
    return f"provision-{env.name}-k8s-{env.kubernetes.version}-{now:%Y%m%dt%H%M%S}z"


def droplet_name(env: Environment, now: dt.datetime, token: str | None = None) -> str:
    """The build droplet's name: the time and 6 random hex digits, so two builds started in
    the same second (two terminals, a CI retry) never share one (droplet names are not
    unique in an account, and the cleanup of a build whose create answer was lost finds
    its droplet by name)."""
    return f"{env.name}-image-build-{now:%Y%m%dt%H%M%S}-{token or secrets.token_hex(3)}"


def _manager(token: str) -> Any:
    import digitalocean

    os.environ.setdefault("PYTHON_DIGITALOCEAN_REQUEST_TIMEOUT_SEC", "30")
    options: dict[str, Any] = {"token": token}
    end_point = os.environ.get("DIGITALOCEAN_END_POINT")
    if end_point:
        options["end_point"] = end_point
    return throttle.watch(digitalocean.Manager(**options))


def build(env: Environment, token: str, user_data: str, report: Report, *,
          size: str = DEFAULT_SIZE, timeout: float = DEFAULT_TIMEOUT,
          now: dt.datetime | None = None) -> Built:
    """Create the droplet, wait for it to power itself off, snapshot it, delete it."""
    import digitalocean

    manager = _manager(token)
    stamp = now or dt.datetime.now(dt.UTC)
    name = snapshot_name(env, stamp)
    build_name = droplet_name(env, stamp)
    tag = image_build_tag(env.name)
    poll = float(os.environ.get(POLL_ENV) or DEFAULT_POLL)
    body = {"name": build_name, "region": env.digitalocean.region, "size": size,
            "image": api_ref(env.digitalocean.base_image),
            "ssh_keys": [api_ref(k) for k in env.digitalocean.ssh_keys],
            "tags": [tag], "user_data": user_data, "monitoring": False}
    droplet_id: int | None = None
    failed = True
    try:
        report(f"creating droplet {build_name} ({size}, {env.digitalocean.base_image}, "
               f"{env.digitalocean.region}) to install Kubernetes {env.kubernetes.version}")
        created = read("the image build droplet", lambda: manager.get_data(
            "droplets", type=digitalocean.baseapi.POST, params=body))
        droplet_id = int(created["droplet"]["id"])
        report(f"waiting for {build_name} to install and power itself off "
               f"(up to {timeout:.0f} s)")
        _wait_off(manager, droplet_id, build_name, timeout, poll)
        report(f"taking snapshot {name}")
        action = read("the snapshot action", lambda: manager.get_data(
            f"droplets/{droplet_id}/actions", type=digitalocean.baseapi.POST,
            params={"type": "snapshot", "name": name}))["action"]
        _wait_action(manager, droplet_id, int(action["id"]), timeout, poll)
        snapshot = _snapshot_named(manager, name, env.digitalocean.region)
        failed = False
    finally:
        # Always, success or not: the droplet is only the snapshot's source. A failure to
        # delete it is raised unless another failure (or Ctrl-C) is already on its way.
        try:
            _delete_build_droplets(manager, token, tag, build_name, droplet_id, report)
        except ImageBuildError as e:
            if not failed:
                raise
            report(str(e))
    return Built(name, snapshot, env.digitalocean.region, env.kubernetes.version)


def _droplet(manager: Any, droplet_id: int) -> dict[str, Any]:
    data = read("the image build droplet", lambda: manager.get_data(f"droplets/{droplet_id}"))
    droplet: dict[str, Any] = data["droplet"]
    return droplet


def _wait_off(manager: Any, droplet_id: int, name: str, timeout: float, poll: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status = _droplet(manager, droplet_id).get("status")
        if status == "off":
            return
        if time.monotonic() >= deadline:
            raise ImageBuildError(
                f"droplet {name} did not power off within {timeout:.0f} s: the install did "
                "not finish (it powers off only after writing /etc/provision/image.json; "
                "the droplet's console shows /var/log/cloud-init-output.log). The droplet "
                "was deleted, no snapshot was made; run again, with a longer --timeout if "
                "the installs were still going")
        time.sleep(poll)


def _wait_action(manager: Any, droplet_id: int, action_id: int, timeout: float,
                 poll: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        action = read("the snapshot action", lambda: manager.get_data(
            f"droplets/{droplet_id}/actions/{action_id}"))["action"]
        status = action.get("status")
        if status == "completed":
            return
        if status == "errored":
            raise ImageBuildError(f"DigitalOcean reports the snapshot action {action_id} "
                                  "errored; the build droplet was deleted: run again")
        if time.monotonic() >= deadline:
            raise ImageBuildError(f"the snapshot action {action_id} did not complete within "
                                  f"{timeout:.0f} s; the build droplet was deleted: run again")
        time.sleep(poll)


def snapshots(manager: Any) -> list[dict[str, Any]]:
    """Every droplet snapshot of the account (all pages, checked: cloud/sweep.py says why)."""
    from provisioner.cloud.sweep import listed

    return listed(manager, "droplet snapshots", "snapshots", {"resource_type": "droplet"})


def _snapshot_named(manager: Any, name: str, region: str) -> str:
    found = [s for s in snapshots(manager)
             if s.get("name") == name and region in (s.get("regions") or [])]
    if not found:
        raise ImageBuildError(f"the snapshot action completed but no snapshot {name} is "
                              f"listed in {region}; run again")
    return str(max(found, key=lambda s: str(s.get("created_at") or ""))["id"])


def _delete_build_droplets(manager: Any, token: str, tag: str, name: str,
                           droplet_id: int | None, report: Report) -> None:
    """Delete this build's droplet: by its id once the create answered, else (a create
    whose answer was lost) the one carrying our tag and exact, random-suffixed name; never
    another build's. A failure here is said, with what to delete, never hidden."""
    import digitalocean

    from provisioner.cloud.sweep import listed

    try:
        ids = {droplet_id} if droplet_id is not None else set()
        for droplet in ([] if droplet_id is not None else
                        listed(manager, "droplets", "droplets/", {"tag_name": tag})):
            if droplet.get("name") == name and tag in (droplet.get("tags") or []):
                ids.add(int(droplet["id"]))
        for rid in sorted(i for i in ids if i is not None):
            read(f"droplet {name}",
                 throttle.watch(digitalocean.Droplet(id=rid, token=token)).destroy)
            report(f"deleted droplet {name} ({rid})")
    except ProvisionError as e:
        raise ImageBuildError(f"could not delete the image build droplet {name} ({e}); "
                              f"delete the droplets tagged {tag}, or run `provision destroy "
                              "--sweep`") from e
