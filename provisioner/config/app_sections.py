"""Reading the workload half of an environment file: apps, shared config, secrets, policy."""

from __future__ import annotations

import datetime as dt
from typing import cast

from provisioner.config import checks
from provisioner.config.model import (
    CHANGE_KINDS,
    WEEKDAYS,
    App,
    Autoscale,
    ChangeKind,
    DeployPolicy,
    Exposure,
    Freeze,
    LoadBalancerKind,
    Port,
    Probe,
    Resources,
    SecretRef,
    Strategy,
    Volume,
    Weekday,
    Window,
)
from provisioner.config.reader import Section
from provisioner.config.yamlpos import Mapping, Node, Scalar

APP_KEYS = ("name", "image", "replicas", "ports", "expose", "load_balancer", "resources", "env",
            "command",
            "args", "readiness", "liveness", "autoscale", "strategy", "volumes", "global_config",
            "fs_group")
_RESOURCE_NAMES = ("cpu", "memory", "ephemeral-storage")
_DAY_NAMES: dict[str, Weekday] = {
    "monday": "mon", "tuesday": "tue", "wednesday": "wed", "thursday": "thu", "friday": "fri",
    "saturday": "sat", "sunday": "sun"}


def _port(app: Section, node: Node, path: str) -> Port | None:
    s = Section(app.issues, node, path, ("name", "port", "protocol", "service_port", "node_port"))
    if not isinstance(node, Mapping):
        return None
    return Port(
        name=s.text("name", "http", checks.port_name, required=True, hint="e.g. name: http"),
        port=s.integer("port", 80, 1, 65535, required=True, hint="the container's port"),
        protocol="UDP" if s.choice("protocol", "TCP", ("TCP", "UDP")) == "UDP" else "TCP",
        service_port=s.integer("service_port", 80, 1, 65535) if s.has("service_port") else None,
        node_port=s.integer("node_port", 30080, 30000, 32767) if s.has("node_port") else None,
    )


def _load_balancer(app: Section, expose: str, ports: tuple[Port, ...]) -> LoadBalancerKind:
    """``load_balancer: {type: http}``: an HTTP load balancer (the CCM's REGIONAL type with
    http rules) rather than the CCM's default network one; only with expose: load_balancer
    and TCP ports (an HTTP load balancer forwards no UDP)."""
    if not app.has("load_balancer"):
        return "network"
    s = app.section("load_balancer", ("type",))
    kind = s.choice("type", "network", ("network", "http"))
    if expose != "load_balancer":
        app.issues.add(app.line_of("load_balancer"), app.sub("load_balancer"),
                       f"only for apps exposed through a load balancer (expose is {expose})",
                       "set expose: load_balancer, or remove load_balancer")
    elif kind == "http" and any(p.protocol == "UDP" for p in ports):
        app.issues.add(s.line_of("type"), s.sub("type"),
                       "an HTTP load balancer forwards no UDP port",
                       "use type: network, or make the UDP ports another app's")
    return "http" if kind == "http" else "network"


def _resources(app: Section) -> Resources:
    s = app.section("resources", ("requests", "limits"))
    return Resources(
        requests=_quantities(s, "requests"),
        limits=_quantities(s, "limits"),
    )


def _quantities(s: Section, key: str) -> tuple[tuple[str, str], ...]:
    pairs = s.pairs(key, None, checks.quantity)
    known = []
    for name, value in pairs:
        if name not in _RESOURCE_NAMES:
            s.issues.add(s.line_of(key), f"{s.sub(key)}.{name}", "unknown resource",
                         "one of: " + ", ".join(_RESOURCE_NAMES))
        else:
            known.append((name, value))
    return tuple(known)


def _probe(app: Section, key: str, port_names: set[str]) -> Probe | None:
    if not app.has(key):
        return None
    s = app.section(key, ("http", "tcp", "exec", "port", "initial_delay", "period", "timeout",
                          "failure_threshold"))
    kinds = [k for k in ("http", "tcp", "exec") if s.has(k)]
    if len(kinds) != 1:
        app.issues.add(app.line_of(key), app.sub(key),
                       "needs exactly one of http, tcp or exec" if not kinds
                       else "sets " + " and ".join(kinds), "e.g. http: /healthz, port: http")
        return None
    port: str | int | None = None
    port_key = "port"
    tcp_node = s.node("tcp")
    if tcp_node is not None and not (isinstance(tcp_node, Scalar) and tcp_node.value is True):
        # `tcp: http` names the port directly; `tcp: true` defers to `port:`.
        if s.has("port"):
            app.issues.add(s.line_of("port"), s.sub("port"), "tcp already names the port",
                           "write either tcp: PORT or tcp: true with port: PORT")
        port_key = "tcp"
    if s.has(port_key):
        port_node = s.node(port_key)
        if isinstance(port_node, Scalar) and isinstance(port_node.value, int) and not isinstance(
                port_node.value, bool):
            port = s.integer(port_key, 80, 1, 65535)
        else:
            port = s.text(port_key, None, checks.port_name)
            if port is not None and port not in port_names:
                app.issues.add(s.line_of(port_key), s.sub(port_key), f"no port named {port!r}",
                               "name one of the app's ports, or give a number")
    elif kinds[0] != "exec":
        if len(port_names) == 1:
            port = next(iter(port_names))
        else:
            app.issues.add(s.line, s.sub("port"), "is required",
                           "say which port to check, e.g. port: http")
    return Probe(
        http_path=s.text("http", None, checks.http_path) if kinds[0] == "http" else None,
        port=port,
        exec_command=s.texts("exec", required=True, hint="e.g. exec: [cat, /tmp/ready]")
        if kinds[0] == "exec" else (),
        initial_delay=s.integer("initial_delay", 0, 0, 3600),
        period=s.integer("period", 10, 1, 3600),
        timeout=s.integer("timeout", 1, 1, 3600),
        failure_threshold=s.integer("failure_threshold", 3, 1, 100),
    )


def _strategy(app: Section) -> Strategy:
    node = app.node("strategy")
    if node is None:
        return Strategy()
    if isinstance(node, Scalar):
        kind = app.choice("strategy", "rolling", ("rolling", "blue_green"))
        return Strategy(kind="blue_green" if kind == "blue_green" else "rolling")
    s = app.section("strategy", ("type", "max_surge", "max_unavailable"))
    kind = s.choice("type", "rolling", ("rolling", "blue_green"))
    surge = _surge(s, "max_surge", "25%")
    unavailable = _surge(s, "max_unavailable", 0)
    if kind == "blue_green" and (s.has("max_surge") or s.has("max_unavailable")):
        app.issues.add(s.line, s.sub("type"), "blue_green runs a full second colour",
                       "max_surge and max_unavailable apply to rolling only; remove them")
    if surge in (0, "0%") and unavailable in (0, "0%"):
        app.issues.add(s.line, s.path, "max_surge and max_unavailable are both zero",
                       "a rollout could never make progress; set max_surge: 1")
    return Strategy(kind="blue_green" if kind == "blue_green" else "rolling",
                    max_surge=surge, max_unavailable=unavailable)


def _surge(s: Section, key: str, default: str | int) -> str | int:
    if not s.has(key):
        return default
    value = s.text(key, str(default), checks.percent_or_count)
    return value if value.endswith("%") else int(value)


def _autoscale(app: Section) -> Autoscale | None:
    if not app.has("autoscale"):
        return None
    s = app.section("autoscale", ("min", "max", "cpu_percent"))
    low = s.integer("min", 2, 1, 1000, required=True, hint="e.g. min: 2")
    high = s.integer("max", 10, 1, 1000, required=True, hint="e.g. max: 10")
    if high < low:
        app.issues.add(s.line_of("max"), s.sub("max"), f"max {high} is below min {low}",
                       "max must be at least min")
    return Autoscale(min=low, max=max(low, high), cpu_percent=s.integer("cpu_percent", 80, 1, 100))


def _volumes(app: Section) -> tuple[Volume, ...]:
    result = []
    for index, node in enumerate(app.items_of("volumes")):
        s = Section(app.issues, node, app.sub("volumes") + f"[{index}]",
                    ("name", "mount_path", "size", "storage_class"))
        if not isinstance(node, Mapping):
            continue
        result.append(Volume(
            name=s.text("name", "data", checks.dns_label, required=True, hint="e.g. name: data"),
            mount_path=s.text("mount_path", "/data", checks.absolute_path, required=True,
                              hint="where the volume is mounted, e.g. /var/lib/data"),
            size=s.text("size", "1Gi", checks.quantity, required=True, hint="e.g. size: 20Gi"),
            storage_class=s.text("storage_class", "do-block-storage", checks.dns_subdomain),
        ))
    return tuple(result)


def read_app(top: Section, node: Node, index: int) -> App | None:
    """One entry of ``apps:``."""
    s = Section(top.issues, node, top.sub("apps") + f"[{index}]", APP_KEYS)
    if not isinstance(node, Mapping):
        return None
    ports = tuple(p for i, n in enumerate(s.items_of("ports"))
                  if (p := _port(s, n, s.sub("ports") + f"[{i}]")) is not None)
    port_names = {p.name for p in ports}
    expose = cast(Exposure, s.choice("expose", "cluster",
                                     ("cluster", "node_port", "load_balancer")))
    autoscale = _autoscale(s)
    replicas = s.integer("replicas", autoscale.min if autoscale else 2, 0, 1000)
    if autoscale and s.has("replicas") and not autoscale.min <= replicas <= autoscale.max:
        s.issues.add(s.line_of("replicas"), s.sub("replicas"),
                     f"{replicas} is outside autoscale {autoscale.min}-{autoscale.max}",
                     "remove replicas: the autoscaler owns it")
    return App(
        name=s.text("name", f"app{index}", checks.app_name, required=True, hint="e.g. name: api"),
        image=s.text("image", "invalid:0", checks.image, required=True,
                     hint="e.g. image: ghcr.io/acme/api:1.4.2"),
        replicas=replicas,
        ports=ports,
        expose=expose,
        load_balancer=_load_balancer(s, expose, ports),
        resources=_resources(s),
        env=s.pairs("env", checks.env_name, None),
        command=s.texts("command"),
        args=s.texts("args"),
        readiness=_probe(s, "readiness", port_names),
        liveness=_probe(s, "liveness", port_names),
        autoscale=autoscale,
        strategy=_strategy(s),
        volumes=_volumes(s),
        global_config=s.boolean("global_config", True),
        fs_group=s.integer("fs_group", 0, 0, 2**31 - 1) if s.has("fs_group") else None,
    )


def read_secrets(top: Section) -> tuple[SecretRef, ...]:
    """``secrets:`` maps a key in the cluster to the environment variable holding its value."""
    return tuple(SecretRef(key, var)
                 for key, var in top.pairs("secrets", checks.env_name, checks.posix_env_name))


def _window(top: Section, node: Node, path: str, default_tz: str) -> Window | None:
    s = Section(top.issues, node, path, ("days", "from", "to", "timezone"))
    if not isinstance(node, Mapping):
        return None
    days: list[Weekday] = []
    for i, day_node in enumerate(s.items_of("days", required=True, hint="e.g. days: [mon, tue]")):
        written = s.text_of(day_node, f"{s.sub('days')}[{i}]", None)
        if written is None:
            continue
        name = written.lower()
        day = _DAY_NAMES.get(name) or next((d for d in WEEKDAYS if d == name), None)
        if day is None:
            top.issues.add(day_node.line, f"{s.sub('days')}[{i}]", f"{written!r} is not a weekday",
                           "one of: " + ", ".join(WEEKDAYS))
            continue
        days.append(day)
    if s.has("days") and not s.items_of("days"):
        top.issues.add(s.line_of("days"), s.sub("days"), "no days: this window never opens",
                       "list the weekdays, e.g. days: [mon, tue, wed, thu]")
    start = s.text("from", "00:00", checks.time_of_day, required=True, hint='e.g. from: "09:00"')
    end = s.text("to", "23:59", checks.time_of_day, required=True, hint='e.g. to: "16:00"')
    if start == end and s.has("from") and s.has("to"):
        top.issues.add(s.line_of("to"), s.sub("to"), "window is empty",
                       "'to' must differ from 'from'; a window past midnight ends the next day")
    return Window(days=tuple(days), start=dt.time.fromisoformat(start),
                  end=dt.time.fromisoformat(end),
                  timezone=s.text("timezone", default_tz, checks.timezone))


def _freeze(top: Section, node: Node, path: str) -> Freeze | None:
    if isinstance(node, Scalar):
        day = top.date(node, path)
        return Freeze(day, day) if day else None
    s = Section(top.issues, node, path, ("from", "to", "reason"))
    start_node, end_node = s.node("from"), s.node("to")
    if start_node is None or end_node is None:
        top.issues.add(s.line, path, "a freeze needs 'from' and 'to' dates",
                       "or write a single date, e.g. - 2026-12-24")
        return None
    start, end = s.date(start_node, s.sub("from")), s.date(end_node, s.sub("to"))
    if start is None or end is None:
        return None
    if end < start:
        top.issues.add(end_node.line, s.sub("to"), f"{end} is before {start}", "swap the dates")
    return Freeze(start, end, s.text("reason", "", None))


def _applies_to(s: Section) -> tuple[ChangeKind, ...]:
    """``applies_to:``: the kinds of change the windows govern; all of them when absent."""
    if not s.has("applies_to"):
        return CHANGE_KINDS
    kinds: list[ChangeKind] = []
    for i, node in enumerate(s.items_of("applies_to")):
        path = f"{s.sub('applies_to')}[{i}]"
        written = s.text_of(node, path, None)
        if written is None:
            continue
        kind = next((k for k in CHANGE_KINDS if k == written.strip().lower()), None)
        if kind is None:
            s.issues.add(node.line, path, f"{written!r} is not a kind of change",
                         "one of: " + ", ".join(CHANGE_KINDS))
        elif kind in kinds:
            s.issues.add(node.line, path, f"{kind!r} is listed twice", "list it once")
        else:
            kinds.append(kind)
    return tuple(kinds)


def read_deploy_policy(top: Section) -> DeployPolicy:
    """The ``deploy_policy:`` section: weekly windows, freeze dates and what they govern."""
    s = top.section("deploy_policy", ("timezone", "windows", "freeze", "applies_to"))
    tz = s.text("timezone", "UTC", checks.timezone)
    windows = tuple(w for i, n in enumerate(s.items_of("windows"))
                    if (w := _window(s, n, s.sub("windows") + f"[{i}]", tz)) is not None)
    freezes = tuple(f for i, n in enumerate(s.items_of("freeze"))
                    if (f := _freeze(s, n, s.sub("freeze") + f"[{i}]")) is not None)
    return DeployPolicy(windows=windows, freezes=freezes, timezone=tz,
                        applies_to=_applies_to(s))
