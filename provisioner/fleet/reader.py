"""Read a fleet file: FILE:LINE: key: problem (hint), every problem at once, exit 2.

A fleet file is told from an environment file by its top-level ``fleet:`` key (an
environment file has ``name:`` and never ``fleet:``). Its environments are loaded with the
environment loader (config/load.py), each reporting its own problems in its own file.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from provisioner.config import checks
from provisioner.config.load import read_bounded
from provisioner.config.reader import Issues, Section
from provisioner.config.yamlpos import Mapping, Node, Scalar, Sequence, load
from provisioner.errors import ConfigError, ConfigIssue
from provisioner.fleet.model import (
    DEFAULT_GLOBAL_LB,
    DEFAULT_REGION_FAILURE,
    DEFAULT_REGIONAL_LB,
    Availability,
    Fleet,
    Gate,
    Member,
    Rollout,
)

TOP_KEYS = ("fleet", "environments", "rollout", "gate", "availability")
ROLLOUT_KEYS = ("canary", "waves", "bake")
GATE_KEYS = ("source", "max_5xx_ratio", "min_requests", "window", "interval", "on_breach",
             "url", "query", "total_query")
AVAILABILITY_KEYS = ("region_failure_probability", "global_lb_availability",
                     "regional_lb_availability", "droplet_availability")
_DURATION = re.compile(r"^([0-9]+)(s|m|h)\Z", re.ASCII)
MAX_BAKE = 24 * 3600


class FleetConfigError(ConfigError):
    """The fleet file's own problems, and those of every environment file it names."""

    def __init__(self, filename: str, issues: list[ConfigIssue],
                 members: list[ConfigError]) -> None:
        super().__init__(filename, issues)
        self.members = members
        lines = [str(self)] if self.issues else []
        self.args = ("\n".join(lines + [str(m) for m in members]),)


def parse_duration(value: str) -> int | None:
    """Seconds in ``30s``, ``5m`` or ``2h``; None when it is none of them."""
    match = _DURATION.match(value.strip())
    if not match:
        return None
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]


def _duration(low: int, high: int) -> checks.Check:
    def check(value: str) -> checks.Problem:
        seconds = parse_duration(value)
        if seconds is None:
            return f"{value!r} is not a duration", "seconds, minutes or hours, e.g. 30s, 10m, 1h"
        if not low <= seconds <= high:
            return f"{value!r} is out of range", f"between {low}s and {high // 60}m"
        return None
    return check


def is_fleet_file(path: Path) -> bool:
    """Whether ``path`` is a fleet file: a YAML mapping with a top-level ``fleet:`` key.

    Anything unreadable or not a mapping is not a fleet: the environment loader then says
    what is wrong with it, as it always did.
    """
    try:
        data = read_bounded(path)
    except (OSError, ConfigError):
        return False
    loaded = load(data)
    return isinstance(loaded.root, Mapping) and "fleet" in loaded.root.items


def _probability(s: Section, key: str, default: float, *, low: float, high: float,
                 hint: str) -> float:
    node = s.node(key)
    if node is None:
        return default
    value = node.value if isinstance(node, Scalar) else None
    if (not isinstance(value, int | float) or isinstance(value, bool)
            or not math.isfinite(value) or not low <= float(value) <= high):
        s.issues.add(node.line, s.sub(key), f"expected a number from {low} to {high}, got "
                     f"{getattr(node, 'raw', 'a collection')!r}", hint)
        return default
    return float(value)


def _names(s: Section, node: Node, path: str) -> list[tuple[str, int, str]]:
    """(name, line, path) of a list of environment references."""
    if not isinstance(node, Sequence):
        s.issues.add(node.line, path, "expected a list of environments",
                     "e.g. [ams3, nyc3]")
        return []
    found = []
    for i, item in enumerate(node.items):
        value = s.text_of(item, f"{path}[{i}]", None, None)
        if value is not None:
            found.append((value, item.line, f"{path}[{i}]"))
    return found


def _rollout(top: Section, members: list[Member], issues: Issues) -> Rollout:
    s = top.section("rollout", ROLLOUT_KEYS, required=True,
                    hint="rollout: {canary: fra1, waves: [[ams3], [nyc3]], bake: 10m}")
    bake = s.text("bake", "10m", _duration(0, MAX_BAKE))
    known = {**{m.stem: m.name for m in members}, **{m.name: m.name for m in members}}
    seen: dict[str, str] = {}

    def resolve(value: str, line: int, path: str) -> str | None:
        name = known.get(value)
        if name is None:
            if members:  # with no environment loaded, every name would be "unknown"
                issues.add(line, path, f"{value!r} is not one of the fleet's environments",
                           "name an environment file's stem or its environment's name: "
                           + ", ".join(sorted(m.stem for m in members)))
            return None
        if name in seen:
            issues.add(line, path, f"{value!r} is already in the rollout at {seen[name]}",
                       "name every environment exactly once across canary and waves")
            return None
        seen[name] = path
        return name

    canary: str | None = None
    canary_node = s.node("canary")
    if canary_node is None:
        if not s.absent:
            issues.add(s.line, s.sub("canary"), "is required",
                       "the environment deployed first, alone, e.g. canary: fra1")
    else:
        value = s.text_of(canary_node, s.sub("canary"), None, None)
        if value is not None:
            canary = resolve(value, canary_node.line, s.sub("canary"))
    waves: list[tuple[str, ...]] = []
    for i, wave in enumerate(s.items_of("waves")):
        names = [n for value, line, path in _names(s, wave, f"{s.sub('waves')}[{i}]")
                 if (n := resolve(value, line, path)) is not None]
        if isinstance(wave, Sequence) and not wave.items:
            issues.add(wave.line, f"{s.sub('waves')}[{i}]", "is empty",
                       "a wave names at least one environment; remove the empty one")
        if names:
            waves.append(tuple(names))
    missing = [m.stem for m in members if m.name not in seen]
    if missing and canary is not None and not s.absent:
        issues.add(s.line_of("waves"), s.sub("waves"),
                   f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} in "
                   "environments but not in the rollout",
                   "name every environment exactly once: the canary, then in a wave")
    return Rollout(canary=canary or "", waves=tuple(waves),
                   bake_seconds=parse_duration(bake) or 0)


def _blind(top: Section, s: Section, members: list[Member], bake_seconds: int) -> None:
    """With source: digitalocean the bake reads the region's app load balancers' HTTP
    response metrics, which only HTTP load balancers report (README, "The 5xx gate and the
    global load balancer"): a region with none would never gather min_requests, so every
    deploy of the fleet would stop at its bake. An error at validate, not at deploy time."""
    if bake_seconds == 0:
        return
    line = top.line_of("fleet") if s.absent else s.line_of("source")
    for m in members:
        if any(a.expose == "load_balancer" and a.load_balancer == "http" for a in m.env.apps):
            continue
        s.issues.add(line, s.sub("source"),
                     f"{m.written}: no app has an HTTP load balancer, and DigitalOcean "
                     "reports HTTP response codes only for those (the gate would read "
                     "nothing)",
                     "give an app `expose: load_balancer` and `load_balancer: {type: http}`, "
                     "or use source: prometheus, or rollout.bake: 0s")


def _gate(top: Section, members: list[Member], bake_seconds: int) -> Gate:
    s = top.section("gate", GATE_KEYS)
    source = s.choice("source", "digitalocean", ("digitalocean", "prometheus"))
    if source == "digitalocean":
        _blind(top, s, members, bake_seconds)
    window = s.text("window", "5m", _duration(60, 3600))
    interval = s.text("interval", "1m", _duration(10, 3600))
    window_seconds = parse_duration(window) or 300
    if 0 < bake_seconds < window_seconds:
        # Every reading of such a bake spans mostly the old release: a breach is diluted
        # below the threshold. The gate judges the new release only once a window fits.
        s.issues.add(s.line_of("window") if s.has("window") else s.line, s.sub("window"),
                     f"is longer than rollout.bake ({window} > the bake): every reading "
                     "would count mostly the release before the deploy",
                     "make rollout.bake at least gate.window, or shorten gate.window")
    url = s.text("url", None, checks.url)
    query = s.text("query", None)
    total_query = s.text("total_query", None)
    if source == "prometheus":
        for key, value in (("url", url), ("query", query), ("total_query", total_query)):
            if value is None and not s.absent:
                s.issues.add(s.line, s.sub(key), "is required with source: prometheus",
                             "url: the Prometheus base URL; query: PromQL counting the 5xx "
                             "responses in the window; total_query: all of them")
        for key, value in (("query", query), ("total_query", total_query)):
            if value is not None and len(members) > 1 and "$region" not in value:
                # One query for every region would judge the canary on the whole fleet's
                # responses (or one region's), and roll it back for another's breach.
                s.issues.add(s.line_of(key), s.sub(key),
                             "must contain $region with several environments (each "
                             "region's bake must read that region alone)",
                             "e.g. sum(increase(http_requests_total{code=~\"5..\", "
                             "region=\"$region\"}[$window])); $region becomes the "
                             "environment's name")
    elif not s.absent:
        for key in ("url", "query", "total_query"):
            if s.has(key):
                s.issues.add(s.line_of(key), s.sub(key),
                             "only applies to source: prometheus",
                             "remove it, or set source: prometheus")
    ratio = _probability(s, "max_5xx_ratio", 0.01, low=0.0, high=1.0,
                         hint="a fraction of the responses, e.g. 0.01 for 1%")
    return Gate(
        source="prometheus" if source == "prometheus" else "digitalocean",
        max_5xx_ratio=ratio,
        min_requests=s.integer("min_requests", 500, 1, 10**9),
        window_seconds=window_seconds,
        interval_seconds=parse_duration(interval) or 60,
        on_breach="evacuate" if s.choice("on_breach", "rollback",
                                         ("rollback", "evacuate")) == "evacuate" else "rollback",
        url=url, query=query, total_query=total_query)


def _availability(top: Section) -> Availability:
    s = top.section("availability", AVAILABILITY_KEYS)
    return Availability(
        region_failure_probability=_probability(
            s, "region_failure_probability", DEFAULT_REGION_FAILURE, low=0.0, high=0.5,
            hint="the probability a whole region is down, e.g. 0.001"),
        global_lb_availability=_probability(
            s, "global_lb_availability", DEFAULT_GLOBAL_LB, low=0.5, high=1.0,
            hint="e.g. 0.9999 (DigitalOcean's SLA for global load balancers)"),
        regional_lb_availability=_probability(
            s, "regional_lb_availability", DEFAULT_REGIONAL_LB, low=0.5, high=1.0,
            hint="e.g. 0.999 (DigitalOcean's SLA for regional load balancers)"),
        droplet_availability=_probability(
            s, "droplet_availability", 0.999, low=0.5, high=1.0,
            hint="e.g. 0.999, as `provision check --availability`"))


def _members(top: Section, base: Path, issues: Issues
             ) -> tuple[list[Member], list[ConfigError]]:  # fmt: skip
    from provisioner.config import load_environment

    members: list[Member] = []
    broken: list[ConfigError] = []
    seen_files: dict[Path, str] = {}
    seen_names: dict[str, str] = {}
    for i, node in enumerate(top.items_of(
            "environments", required=True,
            hint="environments: [fra1.yaml, ams3.yaml], paths relative to the fleet file")):
        path_key = f"environments[{i}]"
        written = top.text_of(node, path_key, None, None)
        if written is None:
            continue
        path = (base / written).resolve()
        if path in seen_files:
            issues.add(node.line, path_key, f"{written!r} is already listed at "
                       f"{seen_files[path]}", "list each environment file once")
            continue
        seen_files[path] = path_key
        if not path.is_file():
            issues.add(node.line, path_key, f"{written!r}: no such file (looked for {path})",
                       "paths are relative to the fleet file's folder")
            continue
        try:
            env = load_environment(path)
        except ConfigError as e:
            issues.add(node.line, path_key, f"{written!r} has problems (listed below)",
                       "fix the environment file")
            broken.append(e)
            continue
        if env.name in seen_names:
            issues.add(node.line, path_key, f"environment name {env.name!r} is also the name "
                       f"in {seen_names[env.name]}", "each environment needs its own name: "
                       "its work folder, tags and load balancers are named after it")
            continue
        seen_names[env.name] = written
        members.append(Member(path=path, written=written, env=env))
    if isinstance(top.node("environments"), Sequence) and not top.items_of("environments"):
        issues.add(top.line_of("environments"), "environments", "must not be empty",
                   "name at least one environment file")
    return members, broken


def parse_fleet(data: bytes, filename: str, base: Path) -> Fleet:
    """Parse and validate a fleet file; raise FleetConfigError listing every issue."""
    loaded = load(data)
    if loaded.root is None:
        raise FleetConfigError(filename, loaded.issues, [])
    issues = Issues()
    issues.items.extend(loaded.issues)
    top = Section(issues, loaded.root, "", TOP_KEYS)
    if not isinstance(loaded.root, Mapping):
        raise FleetConfigError(filename, issues.items, [])
    name = top.text("fleet", "fleet", checks.dns_label, required=True,
                    hint="e.g. fleet: acme; it names the fleet's work folder")
    members, broken = _members(top, base, issues)
    rollout = _rollout(top, members, issues)
    fleet = Fleet(name=name, path=Path(filename), members=tuple(members), rollout=rollout,
                  gate=_gate(top, members, rollout.bake_seconds),
                  availability=_availability(top))
    if issues.items or broken:
        raise FleetConfigError(filename, sorted(set(issues.items)), broken)
    return fleet


def load_fleet(path: Path) -> Fleet:
    """Read and validate the fleet file at ``path`` and every environment it names."""
    try:
        data = read_bounded(path)
    except OSError as e:
        raise FleetConfigError(str(path), [ConfigIssue(0, "", f"cannot read: {e.strerror}",
                                                       "check the path and permissions")],
                               []) from e
    return parse_fleet(data, str(path), path.parent)
