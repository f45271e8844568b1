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
  (removed_apis.py), listed by kind, namespace and name (see `_removed_apis` for what
  counts as still using it);
* a group/version/resource the target no longer serves that clients asked for since the
  API server started, as the server itself counts it (`_requested_deprecated`).

Warnings: a PodDisruptionBudget that allows no disruption while it selects a pod a drain
would evict: every drain of that pod's node waits on it; an object whose managedFields
keep an old write through a removed version while a newer write went through a served one
(a stale ownership record: harmless, nothing to move).
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
        removals = removed_between(minor_of(api_server), minor_of(target))
        # The API server's count first: reading through a deprecated version counts as a
        # request too (metrics.go MonitorRequest), so this check's own reads must not.
        findings += _requested_deprecated(kube, minor_of(target), _read_through_old(removals))
        findings += _removed_apis(kube, removals)
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
    """Objects a client still writes through a group/version the target no longer serves.

    A group/version the API server does not serve (404) holds nothing to find. Where it is
    served, its objects are listed through the replacement when that serves the resource
    (managedFields and kubectl's last-applied annotation read the same through any version,
    and a read through the deprecated one would set the API server's deprecated-request
    gauge, which `_requested_deprecated` counts as a client still using it), else through
    the old version, and judged by `_evidence`. Objects of a type
    with no successor (PodSecurityPolicy) are all reported: they cannot be read after.
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
            through = _listing_path(kube, removal, plural)
            try:
                items = kube.request("GET", f"{through}/{plural}",
                                     verb=f"list {plural}.{removal.group}").get("items") or []
            except KubeError as e:
                if e.status == 404:
                    continue
                found.append(Finding(WARNING, "removed-api", f"cannot list {kind} through "
                                     f"{removal.group_version}: {e}"))
                continue
            using: list[str] = []
            for item in items:
                label = _label(kind, item)
                if removal.replacement is None:
                    using.append(label)
                    continue
                evidence = _evidence(item, removal)
                if evidence.in_use:
                    using.append(label)
                elif evidence.stale:
                    found.append(_stale(label, removal, evidence))
            if using:
                instead = (f"move them to {removal.replacement}" if removal.replacement
                           else "this type has no successor: remove them")
                found.append(Finding(
                    BLOCKING, "removed-api",
                    f"{len(using)} {kind} object(s) use {removal.group_version}, which "
                    f"Kubernetes 1.{removal.removed_in} no longer serves ({SOURCE}): "
                    f"{instead}, in the manifests that create them too",
                    tuple(sorted(using))))
    return found


@dataclass(frozen=True)
class Evidence:
    """What an object's metadata says about writes through a removed group/version."""

    in_use: bool  # the last write (or kubectl's last apply) went through it
    stale: tuple[dict[str, Any], ...] = ()  # older managedFields entries through it
    newest: dict[str, Any] = field(default_factory=dict)  # the newest entry (when stale)


def _evidence(item: dict[str, Any], removal: Removal) -> Evidence:
    """Whether the object is still written through ``removal``'s group/version.

    Each managedFields entry records the group/version its manager wrote through
    (ManagedFieldsEntry.APIVersion, kubernetes/kubernetes
    staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/types.go at commit 521b605f4b6a), and
    the time it last changed a field. An Update entry outlives its client's move to another
    version: the apiserver keys entries by manager identifier, and the identifier of an
    Update operation includes its apiVersion (only Apply drops it) - BuildManagerIdentifier
    in staging/src/k8s.io/apimachinery/pkg/util/managedfields/internal/managedfields.go at
    commit 44c841510184 - so a client that once updated through v1beta3 and now applies
    through v1 leaves the v1beta3 entry behind, and moving manifests cannot clear it.
    So the object is in use through the removed version when its NEWEST entry (by time;
    an entry without one counts as oldest, a tie as in use) went through it, or when
    kubectl's last-applied annotation names it (the next ``kubectl apply`` sends that
    manifest again); older entries through it, with a newer write through a served
    version, are a stale ownership record.
    """
    import json

    meta = item.get("metadata") or {}
    applied = (meta.get("annotations") or {}).get(LAST_APPLIED)
    if applied:
        try:
            if json.loads(applied).get("apiVersion") == removal.group_version:
                return Evidence(True)
        except (ValueError, AttributeError):
            pass
    entries = [e for e in meta.get("managedFields") or [] if isinstance(e, dict)]
    old = [e for e in entries if e.get("apiVersion") == removal.group_version]
    if not old:
        return Evidence(False)
    newest = max(entries, key=_written_at)
    if any(_written_at(e) == _written_at(newest) for e in old):
        return Evidence(True)
    return Evidence(False, tuple(old), newest)


def _written_at(entry: dict[str, Any]) -> dt.datetime:
    """A managedFields entry's time (RFC 3339, UTC); the earliest time when it has none."""
    text = str(entry.get("time") or "")
    try:
        at = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def _stale(label: str, removal: Removal, evidence: Evidence) -> Finding:
    managers = ", ".join(sorted({f"{e.get('manager') or '(unnamed)'} ({e.get('operation')} "
                                 f"at {e.get('time') or 'no time'})" for e in evidence.stale}))
    newest = evidence.newest
    return Finding(
        WARNING, "removed-api",
        f"{label}: managedFields keep an entry of {managers} through "
        f"{removal.group_version}, but the newest write, by "
        f"{newest.get('manager') or '(unnamed)'} at {newest.get('time')}, went through "
        f"{newest.get('apiVersion')}: a stale ownership record (the API server keeps one "
        "Update entry per manager and apiVersion), harmless after the upgrade; nothing to "
        "move", (label,))


METRIC = "apiserver_requested_deprecated_apis"


def _replacement_path(removal: Removal) -> str | None:
    if removal.replacement is None:
        return None
    return (f"/apis/{removal.replacement}" if "/" in removal.replacement
            else f"/api/{removal.replacement}")


def _listing_path(kube: Kube, removal: Removal, plural: str) -> str:
    """Where to list ``plural``: the replacement group/version when it serves it."""
    path = _replacement_path(removal)
    if path is None:
        return removal.path
    try:
        served = kube.request("GET", path, verb=f"discover {removal.replacement}")
    except KubeError:
        return removal.path
    names = {str(r.get("name")) for r in served.get("resources") or []}
    return path if plural in names else removal.path


def _read_through_old(removals: list[Removal]) -> set[tuple[str, str, str]]:
    """(group, version, plural) this check may itself read through the removed version:
    types without a successor. Their objects are judged by listing, not by the count."""
    return {(r.group, r.version, plural) for r in removals if r.replacement is None
            for plural, _ in r.resources}


def _requested_deprecated(kube: Kube, target_minor: int,
                          own_reads: set[tuple[str, str, str]] | None = None
                          ) -> list[Finding]:
    """What clients asked the API server for, by its own count, that the target removes.

    kube-apiserver sets the STABLE gauge ``apiserver_requested_deprecated_apis`` (labels
    group, version, resource, subresource, removed_release) for each deprecated
    group/version/resource requested since it started (kubernetes/kubernetes
    staging/src/k8s.io/apiserver/pkg/endpoints/metrics/metrics.go, deprecatedRequestGauge)
    and marks those requests in the audit log with ``k8s.io/deprecated`` and
    ``k8s.io/removed-release`` (same file); the Deprecated API Migration Guide (kubernetes/
    website content/en/docs/reference/using-api/deprecation-guide.md at commit
    02afb71016ac, "Locate use of deprecated APIs") points to these metrics and audit
    annotations. A series whose removed_release is the target minor or older blocks: some
    client still calls the version and would fail after the upgrade. Each kube-apiserver
    counts its own requests: this is the count of the one that answers (through the
    control-plane load balancer, any of them), so a missing series is no proof of absence.
    /metrics needs ``get`` on the nonResourceURL /metrics (cluster-admin has it); a 403 or
    404 leaves this evidence out without a finding.
    """
    try:
        text = kube.text("/metrics", verb="read the API server's metrics")
    except KubeError as e:
        if e.status in (403, 404):
            return []
        return [Finding(WARNING, "removed-api", f"cannot read the API server's {METRIC} "
                        f"metric: {e}")]
    found = []
    for labels, value in _series(text, METRIC):
        release = re.fullmatch(r"(\d+)\.(\d+)", labels.get("removed_release", ""))
        if not release or value == 0 or (int(release[1]), int(release[2])) > (1, target_minor):
            continue
        group, version = labels.get("group", ""), labels.get("version", "")
        if (group, version, labels.get("resource", "")) in (own_reads or set()):
            continue  # maybe this check's own earlier read; the listing judges these
        group_version = f"{group}/{version}" if group else version
        resource = labels.get("resource", "")
        if labels.get("subresource"):
            resource += f"/{labels['subresource']}"
        found.append(Finding(
            BLOCKING, "removed-api",
            f"the API server answered requests for {resource} through {group_version} since "
            f"it started ({METRIC}, removed_release {labels['removed_release']}), which "
            f"Kubernetes {labels['removed_release']} no longer serves: a client still calls "
            "it; find it in the audit log (annotation k8s.io/deprecated) or by its "
            "deprecation warnings and move it to a served version",
            (f"{resource} {group_version}",)))
    return found


def _series(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples of metric ``name`` in a Prometheus text exposition: (labels, value)."""
    samples = []
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})?\s+(\S+)(?:\s+\S+)?",
                             line.strip())
        if not match:
            continue
        labels = {key: re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], value)
                  for key, value in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"',
                                               match[1] or "")}
        try:
            samples.append((labels, float(match[2])))
        except ValueError:
            continue
    return samples


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
    from provisioner.pipeline.rolling import drainable

    try:
        budgets = kube.request("GET", "/apis/policy/v1/poddisruptionbudgets",
                               verb="list poddisruptionbudgets").get("items") or []
        pods = kube.request("GET", "/api/v1/pods", verb="list pods").get("items") or []
    except KubeError as e:
        return [Finding(WARNING, "disruption-budget", f"cannot read the disruption budgets "
                        f"and pods: {e}")]
    evicted = [p for p in pods if (p.get("spec") or {}).get("nodeName") and drainable(p)]
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
