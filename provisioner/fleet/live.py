"""The regions of a fleet as `provision deploy FLEET` acts on them: each environment's own
cluster (its work folder's kubeconfig) and load balancers (the account's, by name)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from provisioner.errors import ProvisionError, UsageError
from provisioner.fleet import gating
from provisioner.fleet.model import Fleet, Member

Report = Callable[[str], None]


class LiveRegions:
    """:class:`provisioner.fleet.rollout.Regions` on the real clusters and account."""

    def __init__(self, fleet: Fleet, report: Report, *, force_conflicts: bool = False,
                 timeout: float = 600.0) -> None:
        self.fleet = fleet
        self.report = report
        self.force_conflicts = force_conflicts
        self.timeout = timeout
        self._balancers: dict[str, list[str]] = {}

    def api(self, member: Member) -> Any:
        from provisioner.kube import client_for
        from provisioner.workdir import Workdir

        path = Workdir.for_config(member.path, member.env, None).root / "kubeconfig"
        if not path.is_file():
            raise UsageError(f"{member.name}: no kubeconfig at {path}: run `provision up "
                             f"{self.fleet.path}` first")
        try:
            return client_for(path, None)
        except Exception as e:  # the client's ConfigException, OSError, ValueError ...
            raise UsageError(f"{member.name}: cannot use kubeconfig {path}: "
                             f"{' '.join(str(e).split())[:200]}") from e

    def deploy(self, member: Member, override_reason: str | None, now: dt.datetime) -> str:
        from provisioner.pipeline.deploy_stage import deploy
        from provisioner.pipeline.prepare import one_writer

        api = self.api(member)
        with one_writer(member.path, None, "deploy"):
            result = deploy(member.env, api, self.report, force_conflicts=self.force_conflicts,
                            override_reason=override_reason, now=now, timeout=self.timeout)
        return (f"{len(member.env.apps)} app(s), {result.applied} objects applied"
                + (", switched " + ", ".join(f"{a}->{c}" for a, c in result.switched.items())
                   if result.switched else ""))

    def rollback(self, member: Member) -> str:
        from provisioner.kube import Kube
        from provisioner.pipeline.prepare import one_writer
        from provisioner.workloads import rollout
        from provisioner.workloads.objects import applyset_id
        from provisioner.workloads.rollback import rollback

        api = self.api(member)
        with one_writer(member.path, None, "rollback"):
            results = rollback(member.env, api, None)
            waiting = [rollout.Target("Deployment", r.deployment, r.app) for r in results
                       if r.deployment]
            if waiting:
                rollout.wait(Kube(api), member.env.namespace, waiting,
                             f"applyset.kubernetes.io/part-of={applyset_id(member.env)}",
                             time.monotonic() + self.timeout, lambda statuses: None)
        return "; ".join(f"{r.app}: {r.detail}" for r in results) or "no app"

    def load_balancer_ids(self, member: Member) -> list[str]:
        """The ids of the region's app load balancers (the CCM's, lb_names.py)."""
        from provisioner.cloud.inventory import app_load_balancers
        from provisioner.cloud.token import api_token

        if member.name not in self._balancers:
            found = app_load_balancers(member.env, api_token())
            if not found:
                raise ProvisionError(f"{member.name}: none of its apps' load balancers is in "
                                     "the account (the cloud controller manager makes them "
                                     "once the apps are deployed): the gate has nothing to "
                                     "read")
            self._balancers[member.name] = [found[n] for n in sorted(found)]
        return self._balancers[member.name]

    def read_gate(self, member: Member, now: dt.datetime) -> Any:
        from provisioner.cloud.token import api_token

        gate = self.fleet.gate
        ids = self.load_balancer_ids(member) if gate.source == "digitalocean" else []
        return gating.read(gate, api_token(required=gate.source == "digitalocean"), ids, now,
                           member.name)
