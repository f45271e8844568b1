"""What must hold before a running cluster moves to the file's ``kubernetes.version``.

`check` reads the cluster through its API and returns the versions it runs, the target,
and findings: blocking ones (an upgrade must not start) and warnings (it may start, but
something will get in its way). It changes nothing; etcd is asked through an etcdctl pod on
a control-plane node, as `up` asks it (cluster/etcd_members.py).

Blocking:

* more than one minor at a time: kubeadm upgrades the control plane one minor per run
  (kubernetes/kubernetes cmd/kubeadm/app/phases/upgrade/policy.go at commit 8b56eb858826,
  ``MaximumAllowedMinorVersionUpgradeSkew = 1``, a mandatory error for released versions);
* a downgrade (a target older than the API server): provision only moves forward;
* a kubelet newer than the API server, or more than three minors older than the target:
  the version skew policy (kubernetes/website content/en/releases/version-skew-policy.md
  on branch release-1.35:
  "kubelet must not be newer than kube-apiserver" and "may be up to three minor versions
  older" for kubelets 1.25 and newer), checked against the target because every API
  server reaches it before any kubelet moves;
* the target release missing from the package repository the nodes install from
  (cloud/releases.check_release);
* an etcd member that does not answer ``endpoint health --cluster`` (or etcd that cannot
  be asked): upgrading a control-plane node restarts its etcd member;
* a Node that is not Ready;
* objects that still use an API version the target minor no longer serves
  (removed_apis.py), listed by kind, namespace and name.

Warning: a PodDisruptionBudget that allows no disruption while it selects a pod a drain
would evict: every drain of that pod's node waits on it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioner.config.model import Environment
from provisioner.kube import Kube, KubeError
from provisioner.upgrade.removed_apis import SOURCE, Removal, minor_of, removed_between

BLOCKING = "blocking"
WARNING = "warning"
# kubelets 1.25 and newer may be this many minors older than kube-apiserver
# (version-skew-policy.md, "kubelet").
KUBELET_SKEW = 3
# kubeadm's MaximumAllowedMinorVersionUpgradeSkew (phases/upgrade/policy.go).
MINORS_PER_UPGRADE = 1
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


@dataclass(frozen=True)
class Finding:
    """One thing the preflight found; ``objects`` names what it is about."""

    severity: str  # BLOCKING or WARNING
    check: str  # versions, skew, release, etcd, nodes, removed-api, disruption-budget
    message: str
    objects: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"severity": self.severity, "check": self.check, "message": self.message,
                "objects": list(self.objects)}


@dataclass(frozen=True)
class Preflight:
    """The cluster's versions, the target and the findings."""

    api_server: str  # the API server's version, without the leading v
    kubelets: dict[str, str]  # node -> kubelet version, without the leading v
    target: str
    checked_at: dt.datetime
    findings: tuple[Finding, ...] = field(default=())

    @property
    def lowest_kubelet(self) -> str:
        versions = [v for v in self.kubelets.values() if _parse(v)]
        return min(versions, key=_key) if versions else ""

    @property
    def current(self) -> str:
        """The lowest version the cluster runs (API server or kubelet)."""
        versions = [v for v in (self.api_server, self.lowest_kubelet) if _parse(v)]
        return min(versions, key=_key) if versions else self.api_server

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == BLOCKING]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    def as_json(self) -> dict[str, Any]:
        return {"from": {"api_server": self.api_server, "lowest_kubelet": self.lowest_kubelet,
                         "kubelets": dict(sorted(self.kubelets.items()))},
                "to": self.target, "checked_at": self.checked_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "blocked": bool(self.blocking),
                "findings": [f.as_json() for f in self.findings]}


def plain(version: str) -> str:
    """``1.36.2`` for ``v1.36.2``, ``v1.36.2+k3s1`` or ``v1.36.2-rc.0``."""
    return version.strip().lstrip("v").split("+", 1)[0].split("-", 1)[0]


def _parse(version: str) -> tuple[int, int, int] | None:
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", plain(version))
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def _key(version: str) -> tuple[int, int, int]:
    return _parse(version) or (0, 0, 0)


def check(env: Environment, api: Any, now: dt.datetime, config: Path | None = None
          ) -> Preflight:
    """The preflight of moving the cluster behind ``api`` to ``env.kubernetes.version``.

    Raises KubeError only when the API server's version or the Nodes cannot be read (there
    is nothing to judge then); any later check that cannot be made is itself a finding.
    """
    from provisioner.node_facts import list_nodes

    kube = Kube(api, timeout=15, attempts=3)
    api_server = plain(str(kube.request("GET", "/version", verb="read the version")
                           .get("gitVersion", "")))
    nodes = list_nodes(kube)
    kubelets = {n.name: plain(n.kubelet) for n in nodes}
    target = plain(env.kubernetes.version)
    findings = _versions(api_server, kubelets, target)
    findings += [Finding(BLOCKING, "nodes", f"node {n.name} is not Ready: an upgrade drains "
                         "and restarts nodes one after another and needs every one healthy",
                         (f"Node/{n.name}",)) for n in nodes if not n.ready]
    findings += _release(env, config)
    findings += _etcd(api)
    if _parse(api_server) and _parse(target):
        findings += _removed_apis(kube, removed_between(minor_of(api_server), minor_of(target)))
    findings += _budgets(kube)
    return Preflight(api_server, kubelets, target, now, tuple(findings))


def _versions(api_server: str, kubelets: dict[str, str], target: str) -> list[Finding]:
    found: list[Finding] = []
    server, wanted = _parse(api_server), _parse(target)
    if server is None or wanted is None:
        return [Finding(BLOCKING, "versions", f"cannot compare the API server's version "
                        f"{api_server or '(none)'} with {target}")]
    if wanted < server:
        found.append(Finding(BLOCKING, "versions", f"{target} is older than the API server's "
                             f"{api_server}: provision does not downgrade a cluster; keep "
                             f'version: "{api_server}"'))
    elif wanted[1] > server[1] + MINORS_PER_UPGRADE:
        step = f"{server[0]}.{server[1] + 1}"
        found.append(Finding(BLOCKING, "versions", f"{target} is {wanted[1] - server[1]} minors "
                             f"above the API server's {api_server}: kubeadm upgrades one minor "
                             f"at a time; upgrade to the newest {step} release first"))
    for node, version in sorted(kubelets.items()):
        kubelet = _parse(version)
        if kubelet is None:
            found.append(Finding(BLOCKING, "skew", f"node {node} reports no kubelet version "
                                 f"provision can read ({version or 'none'})", (f"Node/{node}",)))
        elif kubelet[:2] > server[:2]:
            found.append(Finding(BLOCKING, "skew", f"node {node} runs kubelet {version}, newer "
                                 f"than the API server's {api_server} (the version skew "
                                 "policy forbids it)", (f"Node/{node}",)))
        elif wanted[1] - kubelet[1] > KUBELET_SKEW:
            found.append(Finding(BLOCKING, "skew", f"node {node} runs kubelet {version}, more "
                                 f"than {KUBELET_SKEW} minors older than {target}: replace or "
                                 "upgrade it first", (f"Node/{node}",)))
    return found


def _release(env: Environment, config: Path | None) -> list[Finding]:
    from provisioner.cloud.releases import check_release
    from provisioner.errors import ConfigError

    warnings: list[str] = []
    try:
        check_release(env, config, warnings.append)
    except ConfigError as e:
        return [Finding(BLOCKING, "release", issue.problem) for issue in e.issues]
    return [Finding(WARNING, "release", w.removeprefix("warning: ")) for w in warnings]


def _etcd(api: Any) -> list[Finding]:
    from provisioner.cluster import etcd_members

    try:
        members = etcd_members.health(api)
    except (etcd_members.EtcdError, KubeError) as e:
        return [Finding(BLOCKING, "etcd", f"cannot tell whether etcd is healthy: {e}")]
    return [Finding(BLOCKING, "etcd", f"etcd member {m.label} does not answer: every member "
                    "must be healthy before a control-plane node restarts",
                    (f"etcd/{m.name or m.hex_id}",)) for m, ok in members if not ok]


def _removed_apis(kube: Kube, removals: list[Removal]) -> list[Finding]:
    """Objects written through a group/version the target no longer serves.

    A group/version the API server does not serve (404) holds nothing to find. Where it is
    served, its objects are listed through it; each one is reported when a client wrote it
    through that version: a ``metadata.managedFields`` entry records the group/version its
    manager used (ManagedFieldsEntry.APIVersion, kubernetes/kubernetes
    staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/types.go at commit 521b605f4b6a),
    ``kubectl apply``'s last-applied annotation the manifest's apiVersion. Objects of a
    type with no successor (PodSecurityPolicy) are all reported: they cannot be read after.
    Objects only ever written through the newer version are served by it after the
    upgrade (the guide: "All existing persisted objects are accessible via the new API").
    """
    found: list[Finding] = []
    for removal in removals:
        try:
            served = kube.request("GET", removal.path, verb=f"discover {removal.group_version}")
        except KubeError as e:
            if e.status == 404:
                continue
            found.append(Finding(WARNING, "removed-api", f"cannot tell whether "
                                 f"{removal.group_version} is in use: {e}"))
            continue
        names = {str(r.get("name")) for r in served.get("resources") or []}
        for plural, kind in removal.resources:
            if plural not in names:
                continue
            try:
                items = kube.request("GET", f"{removal.path}/{plural}",
                                     verb=f"list {plural}.{removal.group}").get("items") or []
            except KubeError as e:
                if e.status == 404:
                    continue
                found.append(Finding(WARNING, "removed-api", f"cannot list {kind} through "
                                     f"{removal.group_version}: {e}"))
                continue
            using = sorted(_label(kind, item) for item in items
                           if removal.replacement is None or _written_with(item, removal))
            if using:
                instead = (f"move them to {removal.replacement}" if removal.replacement
                           else "this type has no successor: remove them")
                found.append(Finding(
                    BLOCKING, "removed-api",
                    f"{len(using)} {kind} object(s) use {removal.group_version}, which "
                    f"Kubernetes 1.{removal.removed_in} no longer serves ({SOURCE}): "
                    f"{instead}, in the manifests that create them too",
                    tuple(using)))
    return found


def _written_with(item: dict[str, Any], removal: Removal) -> bool:
    import json

    meta = item.get("metadata") or {}
    if any(e.get("apiVersion") == removal.group_version for e in meta.get("managedFields") or []
           if isinstance(e, dict)):
        return True
    applied = (meta.get("annotations") or {}).get(LAST_APPLIED)
    if applied:
        try:
            return bool(json.loads(applied).get("apiVersion") == removal.group_version)
        except (ValueError, AttributeError):
            return False
    return False


def _label(kind: str, item: dict[str, Any]) -> str:
    meta = item.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{kind}/{namespace}/{meta.get('name')}" if namespace else f"{kind}/{meta.get('name')}"


def _budgets(kube: Kube) -> list[Finding]:
    """PodDisruptionBudgets that allow no disruption while selecting a pod a drain evicts.

    The Eviction API refuses (429) every eviction a budget with ``disruptionsAllowed`` 0
    covers (pipeline/rolling.py drains through it), so each drain would wait until its
    timeout. Selection as policy/v1 defines it: an empty selector selects every pod of the
    namespace, an absent one none (the migration guide's policy/v1 notes, section v1.25).
    """
    from provisioner.pipeline.rolling import _drainable

    try:
        budgets = kube.request("GET", "/apis/policy/v1/poddisruptionbudgets",
                               verb="list poddisruptionbudgets").get("items") or []
        pods = kube.request("GET", "/api/v1/pods", verb="list pods").get("items") or []
    except KubeError as e:
        return [Finding(WARNING, "disruption-budget", f"cannot read the disruption budgets "
                        f"and pods: {e}")]
    evicted = [p for p in pods if (p.get("spec") or {}).get("nodeName") and _drainable(p)]
    found = []
    for budget in budgets:
        meta, spec = budget.get("metadata") or {}, budget.get("spec") or {}
        if int((budget.get("status") or {}).get("disruptionsAllowed") or 0) > 0:
            continue
        namespace = meta.get("namespace")
        covered = sorted(str((p.get("metadata") or {}).get("name")) for p in evicted
                         if (p.get("metadata") or {}).get("namespace") == namespace
                         and selects(spec.get("selector"),
                                     (p.get("metadata") or {}).get("labels") or {}))
        if covered:
            found.append(Finding(
                WARNING, "disruption-budget",
                f"PodDisruptionBudget {namespace}/{meta.get('name')} allows no disruption "
                f"and covers {len(covered)} pod(s) ({', '.join(covered[:5])}"
                f"{', ...' if len(covered) > 5 else ''}): every drain of their nodes would "
                "wait on it; scale the workload up or relax the budget before upgrading",
                (f"PodDisruptionBudget/{namespace}/{meta.get('name')}",)))
    return found


def selects(selector: Any, labels: dict[str, str]) -> bool:
    """Whether a LabelSelector object selects these labels (None: nothing; {}: everything).

    matchLabels and matchExpressions are ANDed; operators In, NotIn, Exists, DoesNotExist
    (kubernetes/kubernetes staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/helpers.go,
    LabelSelectorAsSelector).
    """
    if not isinstance(selector, dict):
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = set(expression.get("values") or [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def format_preflight(result: Preflight) -> str:
    """The "Upgrade" section `plan` prints."""
    lowest = result.lowest_kubelet
    kubelets = f", lowest kubelet {lowest}" if lowest and lowest != result.api_server else ""
    lines = [f"Upgrade: {result.api_server} -> {result.target} (API server {result.api_server}"
             f"{kubelets})"]
    if not result.findings:
        lines.append("  preflight: no findings")
    for finding in result.findings:
        lines.append(f"  {finding.severity}: {finding.message}")
        lines += [f"    - {name}" for name in finding.objects[:20]]
        if len(finding.objects) > 20:
            lines.append(f"    ... and {len(finding.objects) - 20} more")
    verdict = (f"{len(result.blocking)} blocking finding(s): fix them before upgrading"
               if result.blocking else "nothing blocks the upgrade")
    lines.append(f"  {verdict}; `provision up` does not change the version: "
                 "`provision upgrade` does")
    return "\n".join(lines)
