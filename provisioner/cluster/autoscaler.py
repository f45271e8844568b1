"""Node autoscaling in a running cluster: installed by `up`, stopped by `destroy`.

`up` applies render/autoscaler_objects.py's objects once the platform is ready, with what
only the run knows: the VPC and API address Terraform made, the cluster's discovery hash, the
DigitalOcean token the service uses, the secret late values the pools' user-data needs,
and the mTLS pair of each end (bootstrap/autoscaler_tls.py). Secrets go straight to the
API (server-side apply, field manager ``provision``), never to the rendered folder.

`destroy` first scales both Deployments to zero, so nothing creates a droplet while the
autoscaled ones are deleted and Terraform removes the VPC and firewalls.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from typing import Any

from provisioner.errors import ProvisionError
from provisioner.kube import Kube, KubeError
from provisioner.pipeline.prepare import Prepared
from provisioner.render import autoscaler as spec
from provisioner.render import autoscaler_objects, autoscaler_rbac

Report = Callable[[str], None]

TOKEN_VAR = "PROVISION_AUTOSCALER_TOKEN"
# DigitalOcean custom scopes (API > Tokens > Custom Scopes): what the service calls.
# droplet:create requires droplet:read, regions:read, sizes:read, actions:read and image:read,
# and tagging at creation tag:create (docs.digitalocean.com/reference/api/scopes/droplet/create).
TOKEN_SCOPES = ("droplet:create, droplet:read, droplet:delete, tag:create, tag:read, "
                "regions:read, sizes:read, actions:read, image:read, ssh_key:read, vpc:read")

# kind -> (path prefix, plural, namespaced)
_PATHS = {
    "Namespace": ("/api/v1", "namespaces", False),
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "ConfigMap": ("/api/v1", "configmaps", True),
    "Secret": ("/api/v1", "secrets", True),
    "Service": ("/api/v1", "services", True),
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
}


def object_path(obj: dict[str, Any]) -> str:
    """The REST path of one object provision applies here."""
    prefix, plural, namespaced = _PATHS[obj["kind"]]
    meta = obj["metadata"]
    where = f"/namespaces/{meta['namespace']}" if namespaced else ""
    return f"{prefix}{where}/{plural}/{meta['name']}"


def service_token(token: str, say: Report) -> str:
    """The scoped token the service gets, or the main one with a warning."""
    scoped = os.environ.get(TOKEN_VAR, "").strip()
    if scoped:
        return scoped
    say(f"warning: {TOKEN_VAR} is not set; the autoscaler service in provision-system gets "
        f"the full API token. Create a custom-scoped one ({TOKEN_SCOPES}) and export it")
    return token


def _secret(name: str, data: dict[str, str], kind: str = "Opaque") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": kind,
            "metadata": {"name": name, "namespace": spec.NAMESPACE,
                         "labels": dict(spec.MANAGED)},
            "stringData": data}


def desired(prepared: Prepared, outputs: dict[str, Any], token: str
            ) -> list[dict[str, Any]]:
    """Every object of the autoscaler, Secrets included, in apply order."""
    from provisioner.bootstrap import autoscaler_tls

    env = prepared.env
    endpoint = outputs.get("api_endpoint")
    vpc = (outputs.get("network") or {}).get("vpc_id")
    if not endpoint or not vpc:
        raise ProvisionError("the infrastructure record has no API endpoint or VPC yet; run "
                             "`provision up`")
    late = {"api_endpoint": str(endpoint), "vpc_id": str(vpc),
            "ca_cert_hash": prepared.secrets.ca_cert_hash}
    api_url = os.environ.get("DIGITALOCEAN_END_POINT", "").strip() or spec.DO_API_URL
    image = outputs.get("image")
    if env.digitalocean.snapshot is not None and not image:
        raise ProvisionError(f"the infrastructure record has no id for {env.digitalocean.image} "
                             "yet; run `provision up`")
    objects = autoscaler_objects.objects(env, spec.settings(env, late, str(vpc), api_url,
                                                            None if image is None else str(image)))
    host = f"{spec.SERVICE}.{spec.NAMESPACE}.svc"
    tls = autoscaler_tls.ensure(prepared.work.secrets,
                                [host, f"{host}.cluster.local", spec.SERVICE,
                                 f"{spec.SERVICE}.{spec.NAMESPACE}"])
    known = prepared.secrets.terraform_values()
    values = {ref: known[ref] for ref in sorted(spec.secret_refs(env))}
    ca = tls.ca.cert.decode()
    secrets = [
        _secret(spec.TLS_SECRET, {"tls.crt": tls.server.cert.decode(),
                                  "tls.key": tls.server.key.decode(), "ca.crt": ca},
                "kubernetes.io/tls"),
        _secret(spec.CLIENT_SECRET, {"tls.crt": tls.client.cert.decode(),
                                     "tls.key": tls.client.key.decode(), "ca.crt": ca},
                "kubernetes.io/tls"),
        _secret(spec.TOKEN_SECRET, {"token": token}),
        _secret(spec.VALUES_SECRET, {"values.json": json.dumps(values, sort_keys=True)}),
    ]
    _roll_with(objects, secrets)
    return [objects[0], *secrets, *objects[1:]]  # the namespace first


# The Secrets each Deployment mounts: its processes read them once, at start.
SECRETS_CHECKSUM = "provision.dev/secrets-checksum"
_MOUNTED = {spec.SERVICE: (spec.TLS_SECRET, spec.TOKEN_SECRET, spec.VALUES_SECRET),
            spec.CLUSTER_AUTOSCALER: (spec.CLIENT_SECRET,)}


def _roll_with(objects: list[dict[str, Any]], secrets: list[dict[str, Any]]) -> None:
    """Annotate each Deployment's pod template with a SHA-256 over the data of the Secrets
    it mounts, so a changed token, key or value replaces its pods (a Deployment rolls only
    when its template changes). Only the digest is written, never a value; each digest
    covers a private key, so it cannot be searched for a guessable value."""
    data = {s["metadata"]["name"]: s["stringData"] for s in secrets}
    for obj in objects:
        mounted = _MOUNTED.get(obj["metadata"]["name"]) if obj["kind"] == "Deployment" \
            else None
        if mounted is None:
            continue
        text = json.dumps([[name, data[name]] for name in mounted], sort_keys=True)
        template = obj["spec"]["template"]["metadata"]
        template.setdefault("annotations", {})[SECRETS_CHECKSUM] = hashlib.sha256(
            text.encode()).hexdigest()


def install(prepared: Prepared, api: Any, outputs: dict[str, Any], token: str,
            report: Report) -> bool:
    """Apply the autoscaler's objects; without an autoscaled pool, stop one an earlier
    `up` applied. True when autoscaled droplets may exist that the caller must reconcile
    with the file (cloud/autoscaled.py ``stale``): the autoscaler runs, or ran."""
    if not spec.enabled(prepared.env):
        return _switch_off(api, report)
    kube = Kube(api, timeout=30)
    scoped = service_token(token, report)
    if prepared.env.digitalocean.snapshot is not None and not outputs.get("image"):
        # Outputs recorded before Terraform's output image existed (a plan with no change
        # keeps them): the same lookup as terraform/image.tf, through the API.
        outputs = {**outputs, "image": _snapshot_id(prepared, token)}
    for obj in desired(prepared, outputs, scoped):
        try:
            kube.request("PATCH", object_path(obj), [("fieldManager", "provision"),
                                                     ("force", "true")],
                         json.dumps(obj), "application/apply-patch+yaml",
                         verb=f"apply {obj['kind']} {obj['metadata']['name']}")
        except KubeError as e:
            raise ProvisionError(f"cannot apply the node autoscaler's {obj['kind']} "
                                 f"{obj['metadata']['name']}: {e}") from e
    # What an earlier provision applied and no longer does.
    for kind, name in autoscaler_rbac.RETIRED:
        _delete(kube, {"kind": kind, "metadata": {"name": name}})
    groups = ", ".join(f"{spec.node_group(prepared.env, p)} 0..{p.autoscale.group_max}"
                       for p in spec.autoscaled_pools(prepared.env) if p.autoscale)
    report(f"node autoscaling: {spec.NAMESPACE}/{spec.SERVICE} and "
           f"{spec.NAMESPACE}/{spec.CLUSTER_AUTOSCALER} applied (node groups {groups})")
    return True


def _deployment_path(name: str) -> str:
    return f"/apis/apps/v1/namespaces/{spec.NAMESPACE}/deployments/{name}"


def _switch_off(api: Any, report: Report) -> bool:
    """No pool autoscales: an autoscaler an earlier `up` applied must stop creating
    droplets. Both Deployments are kept at zero replicas (so the next `up` still knows to
    reconcile the droplets they made) and the service's DigitalOcean token is deleted."""
    kube = Kube(api, timeout=30)
    try:
        present = [name for name in (spec.CLUSTER_AUTOSCALER, spec.SERVICE)
                   if kube.get_or_none(_deployment_path(name), verb="get deployments")]
    except KubeError as e:
        raise ProvisionError(f"cannot read the node autoscaler's Deployments in "
                             f"{spec.NAMESPACE}: {e}") from e
    if not present:
        return False
    if not stop(api, report):
        raise ProvisionError(f"no worker pool autoscales any more, but the node autoscaler in "
                             f"{spec.NAMESPACE} could not be stopped; scale its Deployments "
                             "to 0 (kubectl -n provision-system scale deployment --all "
                             "--replicas=0) and run `provision up` again")
    _delete(kube, {"kind": "Secret",
                   "metadata": {"name": spec.TOKEN_SECRET, "namespace": spec.NAMESPACE}})
    report(f"node autoscaling is off (no worker pool has autoscale): {spec.NAMESPACE} "
           "scaled to 0 and its DigitalOcean token deleted")
    return True


def _snapshot_id(prepared: Prepared, token: str) -> str:
    import digitalocean

    from provisioner.cloud import throttle
    from provisioner.cloud.image_build import snapshots
    from provisioner.cloud.node_image import snapshot_id

    found = snapshot_id(prepared.env, snapshots(throttle.watch(
        digitalocean.Manager(token=token))))
    if found is None:
        raise ProvisionError(f"digitalocean.image: no droplet snapshot "
                             f"{prepared.env.digitalocean.snapshot!r} in "
                             f"{prepared.env.digitalocean.region}; the autoscaler cannot "
                             "create droplets of it")
    return found


def _delete(kube: Kube, obj: dict[str, Any]) -> None:
    """Delete one object; gone already is fine."""
    path = object_path(obj)
    try:
        kube.request("DELETE", path, verb=f"delete {obj['kind']} {obj['metadata']['name']}")
    except KubeError as e:
        if e.status != 404:
            raise ProvisionError(f"cannot delete the node autoscaler's {obj['kind']} "
                                 f"{obj['metadata']['name']}: {e}") from e


# A pod gets terminationGracePeriodSeconds (30 s by default) to stop; then it is killed.
STOP_TIMEOUT = 3 * 60.0


def stop(api: Any, report: Report, timeout: float = STOP_TIMEOUT,
         interval: float = 2.0) -> bool:
    """Scale the cluster-autoscaler and the service to zero and wait until neither has a
    pod left (a service pod still terminating may finish a create); False, said, when the
    API refused or pods remain after ``timeout``."""
    kube = Kube(api, timeout=15, attempts=2)
    body = {"spec": {"replicas": 0}}  # a JSON content type: the client serialises it
    for name in (spec.CLUSTER_AUTOSCALER, spec.SERVICE):
        try:
            kube.request("PATCH", _deployment_path(name), None, body,
                         "application/merge-patch+json",
                         verb=f"scale deployments in {spec.NAMESPACE}")
        except KubeError as e:
            if e.status == 404:
                continue
            report(f"could not scale {spec.NAMESPACE}/{name} to 0 ({e}); deleting the "
                   "autoscaled droplets anyway")
            return False
    deadline = time.monotonic() + timeout
    while True:
        try:
            left = _pods(kube)
        except KubeError as e:
            report(f"could not list the pods in {spec.NAMESPACE} ({e}); deleting the "
                   "autoscaled droplets anyway")
            return False
        if not left:
            break
        if time.monotonic() >= deadline:
            report(f"{spec.NAMESPACE} still has pods {', '.join(left)} after {timeout:.0f} s "
                   "at 0 replicas; deleting the autoscaled droplets anyway")
            return False
        time.sleep(interval)
    report(f"node autoscaling stopped ({spec.NAMESPACE}/{spec.CLUSTER_AUTOSCALER} and "
           f"{spec.SERVICE} scaled to 0, no pod left)")
    return True


def _pods(kube: Kube) -> list[str]:
    """The names of both Deployments' pods (by their selectors' label)."""
    selector = (f"app.kubernetes.io/name in ({spec.CLUSTER_AUTOSCALER},{spec.SERVICE})")
    listed = kube.request("GET", f"/api/v1/namespaces/{spec.NAMESPACE}/pods",
                          [("labelSelector", selector)], verb=f"list pods in {spec.NAMESPACE}")
    return sorted(str((p.get("metadata") or {}).get("name"))
                  for p in listed.get("items") or [])
