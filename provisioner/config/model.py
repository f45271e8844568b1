"""The typed, immutable description of one environment.

Everything downstream (render, infra, bootstrap, workloads) reads these classes only; it
never sees YAML. Defaults are applied while loading, so every field here has its final value.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

Cni = Literal["calico", "flannel"]
EndpointKind = Literal["floating_ip", "load_balancer"]
Exposure = Literal["cluster", "node_port", "load_balancer"]
LoadBalancerKind = Literal["network", "http"]
StrategyKind = Literal["rolling", "blue_green"]
TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ChangeKind = Literal["apps", "infrastructure", "upgrades"]
CHANGE_KINDS: tuple[ChangeKind, ...] = ("apps", "infrastructure", "upgrades")


DEFAULT_IMAGE = "ubuntu-24-04-x64"


@dataclass(frozen=True)
class DigitalOcean:
    """Where and how droplets are created."""

    region: str
    ssh_keys: tuple[str, ...]
    vpc_cidr: str
    tags: tuple[str, ...] = ()
    project: str | None = None
    image: str = "ubuntu-24-04-x64"

    @property
    def snapshot(self) -> str | None:
        """The snapshot's name when ``image`` is ``snapshot:<name>`` (a pre-baked image)."""
        return self.image.removeprefix("snapshot:") if self.image.startswith("snapshot:") else None

    @property
    def base_image(self) -> str:
        """The slug or id droplets start from when no snapshot is named (and what
        `provision image build` starts from)."""
        return DEFAULT_IMAGE if self.snapshot is not None else self.image


@dataclass(frozen=True)
class Kubernetes:
    """Cluster-wide Kubernetes settings."""

    version: str
    pod_cidr: str = "10.244.0.0/16"
    service_cidr: str = "10.96.0.0/12"
    cni: Cni = "calico"

    @property
    def minor(self) -> str:
        """``1.36`` for ``1.36.2``: the package repository is per minor."""
        return ".".join(self.version.split(".")[:2])


@dataclass(frozen=True)
class ControlPlane:
    """The control-plane nodes and how the API is reached."""

    count: int = 3
    size: str = "s-2vcpu-4gb"
    endpoint: EndpointKind = "floating_ip"


@dataclass(frozen=True)
class Taint:
    """A node taint applied at join time."""

    key: str
    value: str
    effect: TaintEffect


@dataclass(frozen=True)
class PoolAutoscale:
    """A worker pool's bounds for the cluster-autoscaler.

    Terraform owns the pool's first ``min`` droplets (the floor, always there: the pool's
    ``count``); the autoscaler's node group is the droplets above it, 0 to ``max - min``.
    """

    min: int
    max: int

    @property
    def group_max(self) -> int:
        """The node group's largest size: the droplets the autoscaler may add."""
        return self.max - self.min


@dataclass(frozen=True)
class WorkerPool:
    """A group of identical worker droplets."""

    name: str
    # Droplets Terraform owns; for an autoscaled pool, autoscale.min.
    count: int
    size: str
    labels: tuple[tuple[str, str], ...] = ()
    taints: tuple[Taint, ...] = ()
    # On a running cluster a changed pool is replaced this many workers at a time, each old
    # node drained (evictions honouring PodDisruptionBudgets) within drain_timeout seconds.
    replace_at_once: int = 1
    drain_timeout: int = 600
    autoscale: PoolAutoscale | None = None


@dataclass(frozen=True)
class Access:
    """Who may reach the API server and SSH."""

    api_cidrs: tuple[str, ...]
    ssh_cidrs: tuple[str, ...]


@dataclass(frozen=True)
class SecretRef:
    """A secret value's name in the cluster and the environment variable holding it at deploy."""

    key: str
    from_env: str


@dataclass(frozen=True)
class Port:
    """A container port, and how the Service publishes it."""

    name: str
    port: int
    protocol: Literal["TCP", "UDP"] = "TCP"
    service_port: int | None = None
    node_port: int | None = None

    @property
    def published(self) -> int:
        """The port the Service listens on."""
        return self.service_port if self.service_port is not None else self.port


@dataclass(frozen=True)
class Resources:
    """Kubernetes resource quantities, as written (``250m``, ``512Mi``)."""

    requests: tuple[tuple[str, str], ...] = ()
    limits: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Probe:
    """A readiness or liveness check: exactly one of http, tcp or exec is set."""

    http_path: str | None = None
    port: str | int | None = None
    exec_command: tuple[str, ...] = ()
    initial_delay: int = 0
    period: int = 10
    timeout: int = 1
    failure_threshold: int = 3


@dataclass(frozen=True)
class Autoscale:
    """HorizontalPodAutoscaler bounds."""

    min: int
    max: int
    cpu_percent: int = 80


@dataclass(frozen=True)
class Strategy:
    """How a new version replaces the old one."""

    kind: StrategyKind = "rolling"
    max_surge: str | int = "25%"
    max_unavailable: str | int = 0


@dataclass(frozen=True)
class Volume:
    """A persistent volume claimed per replica of a stateful app."""

    name: str
    mount_path: str
    size: str
    storage_class: str = "do-block-storage"


@dataclass(frozen=True)
class App:
    """One application of the environment."""

    name: str
    image: str
    replicas: int = 2
    ports: tuple[Port, ...] = ()
    expose: Exposure = "cluster"
    # What DigitalOcean load balancer the cloud controller manager makes (expose:
    # load_balancer): "network" (its default, TCP, no HTTP response codes) or "http" (a
    # REGIONAL load balancer with http rules, whose 5xx the fleet's gate can read).
    load_balancer: LoadBalancerKind = "network"
    resources: Resources = field(default_factory=Resources)
    env: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    readiness: Probe | None = None
    liveness: Probe | None = None
    autoscale: Autoscale | None = None
    strategy: Strategy = field(default_factory=Strategy)
    volumes: tuple[Volume, ...] = ()
    global_config: bool = True
    fs_group: int | None = None

    @property
    def stateful(self) -> bool:
        """Apps with volumes run as StatefulSets, one volume per replica."""
        return bool(self.volumes)

    @property
    def min_replicas(self) -> int:
        """The fewest replicas that can run: what availability rests on."""
        return self.autoscale.min if self.autoscale else self.replicas


@dataclass(frozen=True)
class Window:
    """A weekly span of time in which deploys are allowed."""

    days: tuple[Weekday, ...]
    start: dt.time
    end: dt.time
    timezone: str


@dataclass(frozen=True)
class Freeze:
    """Dates (inclusive, in the deploy policy's time zone) with no deploys."""

    start: dt.date
    end: dt.date
    reason: str = ""


@dataclass(frozen=True)
class DeployPolicy:
    """When the environment may change. No windows means any time; ``applies_to`` lists
    the kinds of change the windows and freezes govern (the others may happen any time)."""

    windows: tuple[Window, ...] = ()
    freezes: tuple[Freeze, ...] = ()
    timezone: str = "UTC"
    applies_to: tuple[ChangeKind, ...] = CHANGE_KINDS


@dataclass(frozen=True)
class State:
    """Where Terraform keeps state: the work folder, or a DigitalOcean Spaces bucket."""

    backend: Literal["local", "spaces"] = "local"
    bucket: str | None = None
    key: str | None = None
    region: str | None = None
    endpoint: str | None = None


@dataclass(frozen=True)
class Backups:
    """Scheduled etcd snapshots to a Spaces bucket (defaults applied while loading)."""

    bucket: str
    region: str
    endpoint: str
    prefix: str
    every: int  # seconds between snapshots
    keep_hourly: int = 24
    keep_daily: int = 14


@dataclass(frozen=True)
class Budget:
    """What the environment may cost a month; `check` warns above it."""

    monthly_usd: Decimal


@dataclass(frozen=True)
class Addons:
    """Optional cluster add-ons (``addons:``); each off unless the file turns it on."""

    headlamp: bool = False


@dataclass(frozen=True)
class Environment:
    """One environment: infrastructure, cluster, applications and policy."""

    name: str
    digitalocean: DigitalOcean
    kubernetes: Kubernetes
    control_plane: ControlPlane
    worker_pools: tuple[WorkerPool, ...]
    access: Access
    namespace: str
    config: tuple[tuple[str, str], ...] = ()
    secrets: tuple[SecretRef, ...] = ()
    apps: tuple[App, ...] = ()
    deploy_policy: DeployPolicy = field(default_factory=DeployPolicy)
    state: State = field(default_factory=State)
    deletion_protection: bool = False
    backups: Backups | None = None
    budget: Budget | None = None
    addons: Addons = field(default_factory=Addons)
