"""Hostile checks of the rendered node autoscaler against what the real cloud does.

* DigitalOcean's POST /v2/droplets takes ``image`` as "The image ID of a public or private
  image or the slug identifier for a public image" (tests/data/digitalocean-openapi/
  resources/droplets/models/droplet_create.yml): a name, let alone ``snapshot:<name>``, is
  neither. Terraform resolves the file's ``snapshot:<name>`` to an id (terraform/image.tf);
  the service gets the file's string as it is.
* A Secret volume's files are written by the kubelet as root with the volume's mode; only
  an ``fsGroup`` changes their group (and adds group read): kubernetes pkg/volume/
  volume_linux.go ``SetVolumeOwnership`` ("If fsGroup is nil nothing is done"), the kubelet's
  secret plugin calling it with the pod's fsGroup; kubernetes/kubernetes issues #81089 and
  #57923 (open). So a 0400 Secret file is unreadable to a container running as uid 65532.
  The cluster-autoscaler image is gcr.io/distroless/static:nonroot (cluster-autoscaler/
  Dockerfile at tag cluster-autoscaler-1.36.1), uid 65532 as well.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest
import yaml

from provisioner.errors import RenderError
from provisioner.render import autoscaler, autoscaler_objects
from tests.support.rendering import example


def _snapshot_env() -> Any:
    env = example("production")
    return dataclasses.replace(env, digitalocean=dataclasses.replace(
        env.digitalocean, image="snapshot:provision-prod-k8s-1.36.2-20261208t002025z"))


def test_a_pre_baked_image_reaches_the_service_as_an_id_or_slug() -> None:
    """With digitalocean.image: snapshot:<name>, every droplet the service creates is
    refused by the API (422 invalid image) unless the settings carry the snapshot's id.
    The id is Terraform's (its output ``image``, what the droplets Terraform makes use:
    tests/integration/test_autoscaler_snapshot_image.py); settings without it are refused
    rather than written with the name."""
    env = _snapshot_env()
    late = {"api_endpoint": "10.0.0.5", "vpc_id": "vpc", "ca_cert_hash": "sha256:" + "0" * 64}
    with pytest.raises(RenderError, match="snapshot:provision-prod"):
        autoscaler.settings(env, late, "vpc")
    image = autoscaler.settings(env, late, "vpc", image="170000009")["pools"][0]["image"]
    assert re.fullmatch(r"[0-9]+|[a-z0-9][a-z0-9-]*", str(image)), image
    # The rendered file shows where the id comes from, never the name as an image.
    for doc in yaml.safe_load_all(autoscaler_objects.manifest(env) or ""):
        if doc and doc["kind"] == "ConfigMap" and "settings.json" in doc.get("data", {}):
            shown = json.loads(doc["data"]["settings.json"])["pools"][0]["image"]
            assert not shown.startswith("snapshot:"), shown


def _readable_by(mode: int, uid: int, fs_group: int | None) -> bool:
    """Whether uid (not root) can read a Secret volume file of ``mode`` (owner root)."""
    if fs_group is not None:
        mode |= 0o440  # SetVolumeOwnership: group fsGroup, read-only mask 0440
        return uid == fs_group or bool(mode & 0o004)  # uid's primary group = fsGroup here
    return bool(mode & 0o004)


def test_every_secret_file_is_readable_by_the_user_its_container_runs_as() -> None:
    """Both Deployments run as uid 65532 and mount Secrets with defaultMode 0400 and no
    fsGroup: the service cannot read its token, key or CA (it exits 2 at start, one line,
    then CrashLoopBackOff), the cluster-autoscaler cannot read its client key."""
    docs = [d for d in yaml.safe_load_all(autoscaler_objects.manifest(example("production")) or "")
            if d]
    unreadable = []
    for deployment in (d for d in docs if d["kind"] == "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        security = pod.get("securityContext") or {}
        uid = security.get("runAsUser", 65532)
        fs_group = security.get("fsGroup")
        for volume in pod["volumes"]:
            secret = volume.get("secret")
            if secret is None:
                continue
            mode = secret.get("defaultMode", 0o644)
            if uid != 0 and not _readable_by(mode, uid, fs_group):
                unreadable.append(f"{deployment['metadata']['name']}: {volume['name']} "
                                  f"(mode {mode:o}, uid {uid}, fsGroup {fs_group})")
    assert unreadable == []


def test_the_cluster_autoscaler_may_list_and_watch_volume_attachments() -> None:
    """cluster-autoscaler runs the scheduler's volume plugins over informers that list and
    watch storage.k8s.io volumeattachments; without the grant it logs 'volumeattachments
    ... is forbidden' every resync and its scale-up simulation lacks them
    (kubernetes/autoscaler issues #7663 and #8678; its Helm chart at tag
    cluster-autoscaler-1.36.1, charts/cluster-autoscaler/templates/clusterrole.yaml, grants
    it; the externalgrpc example this render copies predates that, PR #8385)."""
    docs = [d for d in yaml.safe_load_all(autoscaler_objects.manifest(example("production")) or "")
            if d]
    role = next(d for d in docs if d["kind"] == "ClusterRole"
                and d["metadata"]["name"] == "provision-cluster-autoscaler")
    granted = {verb for rule in role["rules"] if "storage.k8s.io" in rule["apiGroups"]
               and "volumeattachments" in rule["resources"] for verb in rule["verbs"]}
    assert {"list", "watch"} <= granted
