"""The acceptance run's machinery: stage timing, teardown that always runs, the leftover check.

Nothing here needs a real account: `run_stages` takes the stages as callables, and the
account reads go through python-digitalocean to whatever DIGITALOCEAN_END_POINT names (the
fake API in tests/cloud/test_acceptance_logic.py, DigitalOcean in test_real_account.py).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from provisioner.cloud import sweep
from provisioner.config.model import Environment
from provisioner.render.names import resource_names

ROOT = Path(__file__).resolve().parents[2]
TOKEN_VARIABLE = "PROVISION_CLOUD_TEST_TOKEN"
# Control planes: 3, the least that survives losing one (etcd keeps a quorum of 2 of 3; with
# 2 members, powering one off stops the API, so a 2-node drill would prove nothing).
CONTROL_PLANES = 3
WORKERS = 1
SIZE = "s-2vcpu-4gb"  # kubeadm's minimum for a control plane is 2 vCPUs and 1700 MB


@dataclass
class Stage:
    """One timed stage: its name, how long it took, and whether it finished."""

    name: str
    seconds: float
    ok: bool


@dataclass
class Stopwatch:
    """Times stages, prints a line as each one ends and a table at the end."""

    clock: Callable[[], float] = time.monotonic
    say: Callable[[str], None] = print
    stages: list[Stage] = field(default_factory=list)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as stage `name` (recorded as failed if it raises)."""
        started = self.clock()
        ok = False
        try:
            yield
            ok = True
        finally:
            self.stages.append(Stage(name, self.clock() - started, ok))
            self.say(f"stage {name}: {'ok' if ok else 'FAILED'} after "
                     f"{self.stages[-1].seconds:.1f}s")

    def table(self) -> str:
        """Every stage with its time, and the total."""
        width = max([len(s.name) for s in self.stages] + [5])
        lines = [f"{s.name:<{width}}  {s.seconds:8.1f}s  {'ok' if s.ok else 'FAILED'}"
                 for s in self.stages]
        total = sum(s.seconds for s in self.stages)
        return "\n".join([*lines, f"{'total':<{width}}  {total:8.1f}s"])


Step = tuple[str, Callable[[], None]]


def run_stages(steps: Sequence[Step], teardown: Sequence[Step],
               leftovers: Callable[[], list[str]], watch: Stopwatch) -> None:
    """Run `steps` in order until one fails; then, whatever happened, every teardown step
    and the leftover check. Raises the first failure; else AssertionError if anything is
    left in the account. Ctrl-C during a step still tears down (then stops).
    """
    failures: list[BaseException] = []
    for name, step in steps:
        try:
            with watch.stage(name):
                step()
        except BaseException as e:  # also KeyboardInterrupt: the droplets cost money
            failures.append(e)
            break
    for name, step in teardown:
        try:
            with watch.stage(name):
                step()
        except Exception as e:  # the next teardown step and the check still run
            failures.append(e)
    left: list[str] = []
    try:
        with watch.stage("leftover check"):
            left = leftovers()
    except Exception as e:
        failures.append(e)
    watch.say(watch.table())
    if left:
        watch.say("STILL IN THE ACCOUNT (billed until deleted):\n" + "\n".join(
            f"  {line}" for line in left))
    if failures:
        raise failures[0]
    if left:
        raise AssertionError(f"{len(left)} resources of the run are still in the account")


# ------------------------------------------------------------------ the account's contents


def account_ids(token: str) -> set[str]:
    """``kind:id`` of every billable resource the account holds (droplets, load balancers,
    volumes, reserved IPs, firewalls): the baseline a run is compared with."""
    import digitalocean

    manager = digitalocean.Manager(token=token)
    return ({f"droplet:{d.id}" for d in manager.get_all_droplets()}
            | {f"load balancer:{lb.id}" for lb in manager.get_all_load_balancers()}
            | {f"volume:{v.id}" for v in manager.get_all_volumes()}
            | {f"floating IP:{ip.ip}" for ip in manager.get_all_floating_ips()}
            | {f"firewall:{fw.id}" for fw in manager.get_all_firewalls()})


def environment_tags(env: Environment) -> list[str]:
    """The tags only this environment gives (never the shared ones of `digitalocean.tags`)."""
    names = resource_names(env)
    return [names[k] for k in ("digitalocean_tag.cluster", "digitalocean_tag.controllers",
                               "digitalocean_tag.workers")]


def tagged(token: str, tags: Sequence[str]) -> list[str]:
    """``tag T: N resources`` for every tag that still exists with something carrying it."""
    import digitalocean
    from digitalocean.baseapi import NotFoundError

    found = []
    for name in tags:
        try:
            count = int(digitalocean.Tag.get_object(token, name).resources.get("count") or 0)
        except NotFoundError:
            continue
        if count:
            found.append(f"tag {name}: {count} resources")
    return found


def leftovers(token: str, env: Environment, baseline: set[str],
              floating_ip: str | None = None) -> list[str]:
    """What the run left: resources new since `baseline`, what the environment provably owns
    (provision's own rule, cloud/ownership.py) and anything carrying its tags."""
    new = sorted(account_ids(token) - baseline)
    owned = sweep.leftovers(env, token, floating_ip).describe()
    return [*(f"new since the run began: {key}" for key in new), *owned,
            *tagged(token, environment_tags(env))]


# ------------------------------------------------------------------ the environment file


def environment_document(name: str, region: str, ssh_keys: Sequence[str],
                         api_cidrs: Sequence[str]) -> dict[str, Any]:
    """The acceptance environment: 3 control planes, 1 worker, one app behind a cloud
    load balancer and one with a volume claim; no deploy windows, no deletion protection."""
    staging = yaml.safe_load((ROOT / "examples" / "staging.yaml").read_text(encoding="utf-8"))
    doc: dict[str, Any] = {
        "name": name,
        "digitalocean": {"region": region, "ssh_keys": list(ssh_keys),
                         "vpc_cidr": "10.77.0.0/16"},
        "kubernetes": copy.deepcopy(staging["kubernetes"]),
        "control_plane": {"count": CONTROL_PLANES, "size": SIZE, "endpoint": "floating_ip"},
        "worker_pools": [{"name": "general", "count": WORKERS, "size": SIZE}],
        "access": {"api_cidrs": list(api_cidrs), "ssh_cidrs": list(api_cidrs)},
        "deletion_protection": False,
        "apps": [
            {"name": "web", "image": "nginxinc/nginx-unprivileged:1.27.3", "replicas": 2,
             "ports": [{"name": "http", "port": 8080, "service_port": 80}],
             "expose": "load_balancer",
             "resources": {"requests": {"cpu": "50m", "memory": "32Mi"},
                           "limits": {"memory": "64Mi"}},
             "readiness": {"http": "/", "port": "http"}},
            {"name": "store", "image": "nginxinc/nginx-unprivileged:1.27.3", "replicas": 1,
             "ports": [{"name": "http", "port": 8080, "service_port": 80}],
             "resources": {"requests": {"cpu": "50m", "memory": "32Mi"},
                           "limits": {"memory": "64Mi"}},
             "volumes": [{"name": "data", "mount_path": "/data", "size": "1Gi"}]},
        ],
    }
    return doc


def wait_until(probe: Callable[[], bool], timeout: float, interval: float = 2.0,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> float:
    """Seconds until `probe()` was true; TimeoutError after `timeout` (probe errors = false)."""
    started = clock()
    while True:
        try:
            if probe():
                return clock() - started
        except Exception:  # the network is expected to fail while things move
            pass
        if clock() - started >= timeout:
            raise TimeoutError(f"not within {timeout:.0f}s")
        sleep(interval)
