"""``provision init``: the questions, their defaults and checks, and the commented file.

Click-free. The command passes the values given as flags and, when someone can answer, a
:class:`Prompter` that asks for the rest. Every value goes through the loader's own checks
(config/checks.py) before it is accepted, reaches the file through a YAML serializer (never
pasted), and the whole text is parsed back by the real loader before anything is written.
Without a prompter (scripts, CI) nothing is asked and the DigitalOcean API is never called.
"""

from __future__ import annotations

import os
import re
import shlex
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from provisioner.cloud.catalog import Catalog, Say, account_catalog
from provisioner.config import checks
from provisioner.errors import ProvisionError, UsageError

T = TypeVar("T")

DEFAULT_PATH = "environment.yaml"
DEFAULT_REGION = "fra1"
# Regions taking new droplets, offered when no API token can say which this account has.
DEFAULT_REGIONS = ("ams3", "atl1", "blr1", "fra1", "lon1", "nyc1", "nyc3", "sfo2", "sfo3",
                   "sgp1", "syd1", "tor1")
DEFAULT_SIZE = "s-2vcpu-4gb"
SUGGESTED_SIZES = ("s-2vcpu-4gb", "s-4vcpu-8gb", "s-8vcpu-16gb", "c-4", "g-2vcpu-8gb")
DEFAULT_CONTROL_PLANE_COUNT = 3
CONTROL_PLANE_COUNTS = (1, 3, 5)
DEFAULT_WORKERS = 2
MAX_WORKERS = 500
DEFAULT_REPLICAS = 2
DEFAULT_VPC_CIDR = "10.10.0.0/16"
POOL_NAME = "general"
PORT_NAME = "http"
NAME_MAX = 20
EXPOSURES = ("cluster", "node_port", "load_balancer")
NODE_PORTS = (30000, 32767)
FIRST_NODE_PORT = 30080
OPEN_TO_ALL = ("0.0.0.0/0", "::/0")


def default_kubernetes_version() -> str:
    """A patch release of the middle supported minor: not the newest, not about to expire."""
    minors = sorted(checks.SUPPORTED_MINORS, key=lambda m: tuple(int(p) for p in m.split(".")))
    return f"{minors[(len(minors) - 1) // 2]}.2"


# ------------------------------------------------------------------------------ answers


class InvalidAnswer(ValueError):
    """A typed answer or flag value that fails its check; the text says why and what to do."""


@dataclass(frozen=True)
class AppSpec:
    """One app as ``init`` writes it: enough to deploy, the rest is edited in the file."""

    name: str
    image: str
    port: int | None = None
    replicas: int = DEFAULT_REPLICAS
    expose: str = "cluster"
    node_port: int | None = None


@dataclass(frozen=True)
class Answers:
    """Every value the new file needs, each already checked."""

    name: str
    region: str
    control_plane_count: int
    control_plane_size: str
    workers: int
    worker_size: str
    ssh_keys: tuple[str, ...]
    api_cidrs: tuple[str, ...]
    kubernetes_version: str
    apps: tuple[AppSpec, ...] = ()


@dataclass(frozen=True)
class Given:
    """Values from the command line, as typed; ``None`` or empty means not given."""

    name: str | None = None
    region: str | None = None
    control_plane_count: str | None = None
    control_plane_size: str | None = None
    workers: str | None = None
    worker_size: str | None = None
    ssh_keys: tuple[str, ...] = ()
    api_cidrs: tuple[str, ...] = ()
    kubernetes_version: str | None = None
    apps: tuple[str, ...] = ()


class Prompter(Protocol):
    """Someone who can answer: asks until ``parse`` accepts, confirms, shows text."""

    def ask(self, question: str, parse: Callable[[str], T], default: str | None = None) -> T:
        """Ask until ``parse`` accepts the answer (it raises InvalidAnswer otherwise)."""
        ...

    def confirm(self, question: str, default: bool = False) -> bool:
        """A yes/no question."""
        ...

    def say(self, message: str) -> None:
        """Part of the dialogue (choices on offer), shown whatever the verbosity."""
        ...


# ------------------------------------------------------------------------------ parsers


def _clean(text: str) -> str:
    value = text.strip(" \t")
    # The checks' regular expressions end in `$`, which also matches before a final newline.
    if not value.isprintable():
        raise InvalidAnswer(f"{value!r} contains line breaks or control characters")
    return value


def _checked(text: str, *rules: checks.Check) -> str:
    value = _clean(text)
    for rule in rules:
        problem = rule(value)
        if problem is not None:
            what, hint = problem
            raise InvalidAnswer(f"{what} ({hint})")
    return value


def _integer(text: str, low: int, high: int, what: str) -> int:
    value = _clean(text)
    if not re.fullmatch(r"[0-9]{1,6}", value) or not low <= int(value) <= high:
        raise InvalidAnswer(f"{value!r} is not a {what} (a whole number from {low} to {high})")
    return int(value)


def _name_length(value: str) -> checks.Problem:
    if len(value) > NAME_MAX:
        return (f"{value!r} is {len(value)} characters",
                f"keep it to {NAME_MAX} so droplet names fit in a hostname")
    return None


def parse_name(text: str) -> str:
    """The environment name; also the apps' namespace, so not a cluster namespace."""
    return _checked(text, checks.dns_label, _name_length, checks.namespace)


def parse_region(text: str) -> str:
    """A region slug, by form only."""
    return _checked(text, checks.region)


def parse_size(text: str) -> str:
    """A droplet size slug, by form only."""
    return _checked(text, checks.size)


def parse_control_plane_size(text: str) -> str:
    """A size kubeadm accepts for a control-plane node."""
    return _checked(text, checks.control_plane_size)


def parse_control_plane_count(text: str) -> int:
    """1, 3 or 5: etcd needs a majority, so even counts buy nothing."""
    value = _clean(text)
    if value not in {str(n) for n in CONTROL_PLANE_COUNTS}:
        raise InvalidAnswer(f"{value!r} control-plane nodes (1 (no failover), 3 or 5: etcd "
                            "needs a majority, so an even count survives no more failures "
                            "than one node fewer)")
    return int(value)


def parse_workers(text: str) -> int:
    """Worker droplets in the pool."""
    return _integer(text, 0, MAX_WORKERS, "worker count")


def parse_ssh_key(text: str) -> str:
    """An SSH key by MD5 fingerprint or numeric id."""
    return _checked(text, checks.ssh_key)


def parse_cidr(text: str) -> str:
    """A network allowed to reach the API."""
    return _checked(text, checks.cidr)


def parse_kubernetes_version(text: str) -> str:
    """A full version of a supported minor, written without a leading ``v``."""
    return _checked(text, checks.kubernetes_version).removeprefix("v")


def parse_app_name(text: str) -> str:
    """An app name (a DNS-1035 label of at most 50 characters)."""
    return _checked(text, checks.app_name)


def parse_image(text: str) -> str:
    """A pinned image reference (a tag other than latest, or a digest)."""
    return _checked(text, checks.image)


def parse_port(text: str) -> int:
    """A container port."""
    return _integer(text, 1, 65535, "port")


def parse_optional_port(text: str) -> int | None:
    """A container port, or none."""
    return None if _clean(text).lower() in ("", "none", "-") else parse_port(text)


def parse_replicas(text: str) -> int:
    """Desired replicas of an app."""
    return _integer(text, 0, 1000, "replica count")


def parse_expose(text: str) -> str:
    """How an app's Service is published."""
    value = _clean(text)
    if value not in EXPOSURES:
        raise InvalidAnswer(f"{value!r} is not a way to expose an app (one of: "
                            + ", ".join(EXPOSURES) + ")")
    return value


def parse_node_port(text: str) -> int:
    """A port of the NodePort range, which the firewall then opens exactly."""
    return _integer(text, NODE_PORTS[0], NODE_PORTS[1], "node port")


def parse_app(text: str) -> AppSpec:
    """``NAME=IMAGE[:PORT]``; a final ``:DIGITS`` is a port only after a tag or digest."""
    name, sep, rest = text.partition("=")
    if not sep:
        raise InvalidAnswer(f"{text!r} is not NAME=IMAGE[:PORT] (e.g. "
                            "api=ghcr.io/acme/api:1.4.2:8080)")
    app_name = parse_app_name(name)
    match = re.fullmatch(r"(.+):([0-9]+)", rest)
    if match and checks.image(match.group(1)) is None:
        return AppSpec(app_name, parse_image(match.group(1)), port=parse_port(match.group(2)))
    return AppSpec(app_name, parse_image(rest))


def list_of(parse: Callable[[str], T]) -> Callable[[str], tuple[T, ...]]:
    """A parser of comma- or space-separated answers, each parsed, duplicates dropped."""

    def parse_all(text: str) -> tuple[T, ...]:
        items = [p for p in re.split(r"[,\s]+", _clean(text)) if p]
        if not items:
            raise InvalidAnswer("give at least one")
        return tuple(dict.fromkeys(parse(item) for item in items))

    return parse_all


def problems_in(given: Given) -> list[str]:
    """Every flag value that fails its check, as ``--flag: problem (hint)``."""
    singles: list[tuple[str, str | None, Callable[[str], object]]] = [
        ("--name", given.name, parse_name),
        ("--region", given.region, parse_region),
        ("--control-plane-count", given.control_plane_count, parse_control_plane_count),
        ("--control-plane-size", given.control_plane_size, parse_control_plane_size),
        ("--workers", given.workers, parse_workers),
        ("--worker-size", given.worker_size, parse_size),
        ("--kubernetes-version", given.kubernetes_version, parse_kubernetes_version),
    ]
    many: list[tuple[str, Sequence[str], Callable[[str], object]]] = [
        ("--ssh-key", given.ssh_keys, parse_ssh_key),
        ("--api-cidr", given.api_cidrs, parse_cidr),
        ("--app", given.apps, parse_app),
    ]
    found = []
    for flag, value, parse in [*singles, *((f, v, p) for f, vs, p in many for v in vs)]:
        if value is None:
            continue
        try:
            parse(value)
        except InvalidAnswer as e:
            found.append(f"{flag}: {e}")
    if not found:
        names = [parse_app(a).name for a in given.apps]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            found.append(f"--app: app name {dup!r} is given twice (app names must be unique)")
        if given.apps and given.workers is not None and parse_workers(given.workers) == 0:
            found.append("--app: apps need at least one worker (--workers 1 or more)")
    return found


# ------------------------------------------------------------------------ the dialogue


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


def _columns(items: Iterable[str]) -> str:
    lines, line = [], "  "
    for item in items:
        if len(line) + len(item) > 90 and line.strip():
            lines.append(line.rstrip(", "))
            line = "  "
        line += item + ", "
    lines.append(line.rstrip(", "))
    return "\n".join(lines)


def _one_of(parse: Callable[[str], str], offered: Sequence[str],
            what: str) -> Callable[[str], str]:
    def strict(text: str) -> str:
        value = parse(text)
        if offered and value not in offered:
            raise InvalidAnswer(f"{value!r} is not {what} (choose one of those listed)")
        return value

    return strict


class _Session:
    """One run of the questions: flags first, then the prompter, then defaults."""

    def __init__(self, given: Given, prompter: Prompter | None, accept_defaults: bool,
                 catalog: Callable[[], Catalog]) -> None:
        self.given = given
        self.prompter = prompter
        self.accept_defaults = accept_defaults
        self._load_catalog = catalog
        self._catalog: Catalog | None = None

    @property
    def catalog(self) -> Catalog:
        # Only a dialogue reads the account: scripts get no API call and stay reproducible.
        if self.prompter is None:
            return Catalog()
        if self._catalog is None:
            self._catalog = self._load_catalog()
        return self._catalog

    def asks(self, default: str | None) -> bool:
        return self.prompter is not None and not (self.accept_defaults and default is not None)

    def take(self, given: str | None, parse: Callable[[str], T], question: str,
             default: str | None, strict: Callable[[str], T] | None = None,
             offer: str | None = None) -> T:
        if given is not None:
            return parse(given)
        if self.prompter is not None and self.asks(default):
            if offer:
                self.prompter.say(offer)
            return self.prompter.ask(question, strict or parse, default)
        if default is None:  # refused up front by missing_flags()
            raise AssertionError("a value without a default was neither given nor asked for")
        return (strict or parse)(default)

    def say(self, message: str) -> None:
        if self.prompter is not None:
            self.prompter.say(message)

    # -------------------------------------------------------------- one per question

    def region(self) -> str:
        if self.given.region is not None:
            return parse_region(self.given.region)
        offered = self.catalog.regions
        default = (DEFAULT_REGION if not offered or DEFAULT_REGION in offered
                   else offered[0])
        offer = ("Regions available to this account:\n" + _columns(offered) if offered
                 else "Regions: " + ", ".join(DEFAULT_REGIONS) + " (and others DigitalOcean "
                 "lists)")
        return self.take(None, parse_region, "Region", default,
                         _one_of(parse_region, offered, "a region available to this account"),
                         offer)

    def size(self, given: str | None, region: str, parse: Callable[[str], str],
             question: str) -> str:
        if given is not None:
            return parse(given)
        offered = self.catalog.sizes_in(region)
        usable = [s for s in offered if _accepts(parse, s)]
        default = DEFAULT_SIZE if not offered or DEFAULT_SIZE in usable else (
            usable[0] if usable else None)
        offer = (f"Sizes offered in {region}:\n" + _columns(usable) if offered
                 else "Sizes, e.g.: " + ", ".join(SUGGESTED_SIZES))
        return self.take(None, parse, question, default,
                         _one_of(parse, usable, f"a size offered in {region}"), offer)

    def ssh_keys(self) -> tuple[str, ...]:
        if self.given.ssh_keys:
            return tuple(dict.fromkeys(parse_ssh_key(k) for k in self.given.ssh_keys))
        keys = self.catalog.keys
        offer: str | None
        if keys:
            offer = "SSH keys of this account:\n" + "\n".join(
                f"  {i}) {_printable(k.name) or '(no name)'}  {k.fingerprint}"
                for i, k in enumerate(keys, 1))
            question = "SSH keys allowed on the droplets (numbers from the list, comma-separated)"
            default = "1" if len(keys) == 1 else None
        else:
            offer = ("No SSH keys in this account yet: upload one (doctl compute ssh-key import "
                     "NAME --public-key-file ~/.ssh/id_ed25519.pub) and give its fingerprint."
                     if self.catalog.from_account else None)
            question = "SSH keys allowed on the droplets (MD5 fingerprints or ids, comma-separated)"
            default = None

        def pick(text: str) -> str:
            value = _clean(text)
            if keys and value.isdigit() and 1 <= int(value) <= len(keys):
                return keys[int(value) - 1].fingerprint
            key = parse_ssh_key(value)
            if keys and all(key not in (k.fingerprint, k.id) for k in keys):
                raise InvalidAnswer(f"{key!r} is not in this account (give a number from the "
                                    "list, or upload the key first)")
            return key

        return self.take(None, list_of(parse_ssh_key), question, default, list_of(pick), offer)

    def api_cidrs(self) -> tuple[str, ...]:
        if self.given.api_cidrs:
            return tuple(dict.fromkeys(parse_cidr(c) for c in self.given.api_cidrs))
        offer = ("Only the networks listed here may reach the Kubernetes API (port 6443); the\n"
                 "VPC and the cluster's own nodes always can. Give your office's range or your\n"
                 "own address as a /32; 0.0.0.0/0 opens the API to the whole internet.")
        return self.take(None, list_of(parse_cidr),
                         "Networks allowed to reach the API (CIDRs, comma-separated)", None,
                         offer=offer)

    def apps(self, workers: int) -> tuple[AppSpec, ...]:
        if self.given.apps:
            return tuple(parse_app(a) for a in self.given.apps)
        if self.prompter is None or self.accept_defaults:
            return ()
        if workers == 0:
            self.say("No workers, so no apps for now: they need a worker to run on.")
            return ()
        apps: list[AppSpec] = []
        while self.prompter.confirm("Add an app?" if not apps else "Add another app?"):
            apps.append(self._one_app(self.prompter, apps))
        return tuple(apps)

    def _one_app(self, prompter: Prompter, earlier: Sequence[AppSpec]) -> AppSpec:
        taken = {a.name for a in earlier}
        used_ports = {a.node_port for a in earlier}

        def new_name(text: str) -> str:
            name = parse_app_name(text)
            if name in taken:
                raise InvalidAnswer(f"there is already an app {name!r} (app names are unique)")
            return name

        def free_port(text: str) -> int:
            port = parse_node_port(text)
            if port in used_ports:
                raise InvalidAnswer(f"node port {port} is already used by another app")
            return port

        name = prompter.ask("  App name", new_name)
        image = prompter.ask("  Image, with a version tag or digest", parse_image)
        port = prompter.ask("  Container port (none if it serves nothing)", parse_optional_port,
                            "none")
        replicas = prompter.ask("  Replicas", parse_replicas, str(DEFAULT_REPLICAS))
        if port is None:
            return AppSpec(name, image, None, replicas)
        expose = prompter.ask("  Expose as (" + ", ".join(EXPOSURES) + ")", parse_expose,
                              "cluster")
        node_port = None
        if expose == "node_port":
            default = next(p for p in range(FIRST_NODE_PORT, NODE_PORTS[1] + 1)
                           if p not in used_ports)
            node_port = prompter.ask(f"  Node port ({NODE_PORTS[0]}-{NODE_PORTS[1]})",
                                     free_port, str(default))
        return AppSpec(name, image, port, replicas, expose, node_port)


def _runs_apps(text: str) -> int:
    workers = parse_workers(text)
    if workers == 0:
        raise InvalidAnswer("the apps given with --app need at least one worker")
    return workers


def _accepts(parse: Callable[[str], object], value: str) -> bool:
    try:
        parse(value)
    except InvalidAnswer:
        return False
    return True


def default_name(path: Path) -> str | None:
    """The file's stem when it makes a valid environment name (``staging.yaml``: staging)."""
    return path.stem if _accepts(parse_name, path.stem) else None


def missing_flags(given: Given, accept_defaults: bool, name_default: str | None) -> list[str]:
    """Flags a run without a prompter still needs; those with a default need --yes."""
    fields: list[tuple[str, object, bool]] = [
        ("--name", given.name, name_default is not None),
        ("--region", given.region, True),
        ("--control-plane-count", given.control_plane_count, True),
        ("--control-plane-size", given.control_plane_size, True),
        ("--workers", given.workers, True),
        ("--worker-size", given.worker_size, True),
        ("--ssh-key", given.ssh_keys or None, False),
        ("--api-cidr", given.api_cidrs or None, False),
        ("--kubernetes-version", given.kubernetes_version, True),
    ]
    return [flag for flag, value, has_default in fields
            if value is None and not (accept_defaults and has_default)]


def collect(given: Given, prompter: Prompter | None, accept_defaults: bool = False,
            name_default: str | None = None,
            catalog: Callable[[], Catalog] = Catalog) -> Answers:
    """Every answer: from the flags, else asked (if a prompter), else defaults (if accepted).

    Raises UsageError naming every bad flag, and, without a prompter, every missing one.
    """
    found = problems_in(given)
    if found:
        raise UsageError("\n".join(found))
    if prompter is None:
        missing = missing_flags(given, accept_defaults, name_default)
        if missing:
            required = [f for f in missing if f in ("--ssh-key", "--api-cidr")
                        or (f == "--name" and name_default is None)]
            defaultable = [f for f in missing if f not in required]
            parts = []
            if required:
                parts.append(", ".join(required) + " (no default)")
            if defaultable:
                parts.append(", ".join(defaultable) + " (or --yes for their defaults)")
            raise UsageError("no terminal to ask on, and no value for " + "; ".join(parts)
                             + ": pass them as flags, or run on a terminal (or --interactive)")
    s = _Session(given, prompter, accept_defaults, catalog)
    name = s.take(given.name, parse_name,
                  "Environment name (prefixes every cloud resource; at most 20 characters)",
                  name_default)
    region = s.region()
    count = s.take(given.control_plane_count, parse_control_plane_count,
                   "Control-plane nodes (1 for no failover, 3 or 5)",
                   str(DEFAULT_CONTROL_PLANE_COUNT))
    cp_size = s.size(given.control_plane_size, region, parse_control_plane_size,
                     "Control-plane droplet size (at least 2 vCPUs and 2 GB)")
    workers = s.take(given.workers, parse_workers, "Worker nodes", str(DEFAULT_WORKERS),
                     _runs_apps if given.apps else None)
    worker_size = s.size(given.worker_size, region, parse_size, "Worker droplet size")
    ssh_keys = s.ssh_keys()
    api_cidrs = s.api_cidrs()
    version = s.take(given.kubernetes_version, parse_kubernetes_version,
                     "Kubernetes version (supported minors: "
                     + ", ".join(checks.SUPPORTED_MINORS) + ")",
                     default_kubernetes_version())
    return Answers(name, region, count, cp_size, workers, worker_size, ssh_keys, api_cidrs,
                   version, s.apps(workers))


# --------------------------------------------------------------------------- the file


def _quoted(value: str) -> str:
    """A double-quoted YAML scalar, for values people expect to see quoted (versions, keys)."""
    import yaml

    text: str = yaml.safe_dump(value, default_style='"', allow_unicode=False, width=1 << 30)
    return text.removesuffix("\n...\n").rstrip("\n")


def render(answers: Answers) -> str:
    """The commented environment file; every value serialized, never pasted."""
    from provisioner.render.filters import to_yaml as y

    a = answers
    lines = [
        "# An environment for `provision`, written by `provision init`. Every key is described",
        '# in the README ("The environment file"); unknown keys are errors. Next:',
        "#   provision validate THIS-FILE && provision plan THIS-FILE --offline",
        "",
        "# Prefix of every cloud resource (<name>-cp-1, <name>-vpc, ...) and the cluster's name;",
        "# the apps run in a namespace of the same name.",
        f"name: {y(a.name)}",
        "",
        "# Where the droplets live. ssh_keys: the keys allowed to log in (MD5 fingerprints or",
        "# ids of keys in the account). vpc_cidr: the environment's private network; it must",
        "# not overlap the pod or service ranges below.",
        "digitalocean:",
        f"  region: {y(a.region)}",
        "  ssh_keys:",
        *(f"    - {_quoted(k)}" for k in a.ssh_keys),
        f"  vpc_cidr: {y(DEFAULT_VPC_CIDR)}",
        "  # tags: [team-platform]       # extra tags on every droplet",
        "  # project: My Project         # file the resources under a DigitalOcean project",
        "",
        "# The cluster. kubelet, kubeadm and kubectl are pinned to this version; check",
        "# https://kubernetes.io/releases/ for the newest patch of its minor.",
        "kubernetes:",
        f"  version: {_quoted(a.kubernetes_version)}",
        "  cni: calico                   # pod network plugin: calico or flannel",
        "  # pod_cidr: 10.244.0.0/16     # the defaults; change only if they clash",
        "  # service_cidr: 10.96.0.0/12",
        "",
        "# Control-plane nodes run etcd and the API server: 1 (no failover), 3 or 5, never an",
        "# even count. The API is reached at a floating IP that keepalived moves to a healthy",
        "# control-plane node.",
        "control_plane:",
        f"  count: {y(a.control_plane_count)}",
        f"  size: {y(a.control_plane_size)}",
        "  endpoint: floating_ip",
        "",
        "# Workers run the apps. Scaling a pool down removes its highest-numbered droplets.",
        "worker_pools:",
        f"  - name: {y(POOL_NAME)}",
        f"    count: {y(a.workers)}",
        f"    size: {y(a.worker_size)}",
        "    # labels: {tier: general}",
        "",
        "# Who may reach the Kubernetes API on 6443 (the VPC and the cluster's own nodes always",
        "# can). SSH to the nodes (port 22) stays closed until networks are listed in ssh_cidrs.",
        "access:",
        "  api_cidrs:",
        *(f"    - {y(c)}" for c in a.api_cidrs),
        "  # ssh_cidrs: [203.0.113.0/24]",
        "",
        "# When true, `provision destroy` refuses to run without --force. Set it for production.",
        "deletion_protection: false",
        "",
        "# Settings every app receives as environment variables (the global-config ConfigMap):",
        "# config:",
        "#   LOG_LEVEL: info",
        "# Secrets every app receives. Each value names the environment variable that holds",
        "# the secret when `provision deploy` runs (in CI: from the secret store); secret",
        "# values never appear in this file:",
        "# secrets:",
        "#   DATABASE_URL: STAGING_DATABASE_URL",
        "",
    ]
    lines += _apps(a.apps)
    lines += [
        "",
        "# Deploys, infrastructure changes and upgrades only inside these windows (and never",
        "# in a freeze); applies_to leaves some kinds of change free:",
        "# deploy_policy:",
        "#   timezone: Europe/Berlin",
        "#   windows:",
        "#     - {days: [mon, tue, wed, thu], from: \"09:00\", to: \"16:00\"}",
        "#   applies_to: [apps, infrastructure, upgrades]",
        "",
        "# Terraform state lives in the work folder (.provision/<name>/state/). For a team or",
        "# CI, keep it in a Spaces bucket with a lock instead (keys from SPACES_ACCESS_KEY_ID",
        "# and SPACES_SECRET_ACCESS_KEY; see examples/ci/):",
        "# state:",
        "#   backend: spaces",
        "#   bucket: my-provision-state",
        f"#   region: {y(a.region)}",
    ]
    return "\n".join(lines) + "\n"


def _apps(apps: Sequence[AppSpec]) -> list[str]:
    header = [
        "# The applications. Images need a version tag or a digest (never latest): rollback",
        "# and drift detection depend on it. Probes, resources, env, autoscale, strategy and",
        "# volumes are described in the README.",
    ]
    if not apps:
        return [*header,
                "# apps:",
                "#   - name: api",
                "#     image: ghcr.io/acme/api:1.4.2",
                "#     replicas: 2",
                "#     ports:",
                "#       - {name: http, port: 8080}",
                "#     expose: cluster            # cluster, node_port or load_balancer",
                "#     readiness: {http: /healthz, port: http}"]
    from provisioner.render.filters import to_yaml as y

    lines = [*header, "apps:"]
    for app in apps:
        lines += [f"  - name: {y(app.name)}",
                  f"    image: {y(app.image)}",
                  f"    replicas: {y(app.replicas)}"]
        if app.port is not None:
            lines += ["    ports:",
                      f"      - name: {y(PORT_NAME)}",
                      f"        port: {y(app.port)}"]
            if app.node_port is not None:
                lines.append(f"        node_port: {y(app.node_port)}")
            lines += [f"    expose: {y(app.expose)}"
                      + " " * max(1, 16 - len(app.expose))
                      + "# cluster, node_port or load_balancer",
                      f"    # readiness: {{http: /healthz, port: {PORT_NAME}}}"]
    return lines


def notes(answers: Answers) -> list[str]:
    """What the user should know about the answers before going on."""
    found = []
    if any(c in OPEN_TO_ALL for c in answers.api_cidrs):
        found.append("note: access.api_cidrs opens the Kubernetes API to the whole internet; "
                     "list narrower networks if you can")
    if answers.control_plane_count == 1:
        found.append("note: one control-plane node has no failover (fine for trying things "
                     "out; `provision check` explains the risk)")
    return found


def next_steps(path: Path) -> list[str]:
    """The commands to run after ``init``, ready to copy."""
    p = shlex.quote(str(path))
    return ["next steps:",
            f"  provision validate {p}",
            f"  provision plan {p} --offline",
            "  export DIGITALOCEAN_TOKEN=...   # a read/write API token",
            f"  provision up {p}"]


# ------------------------------------------------------------------------- writing


def check_target(path: Path, force: bool) -> None:
    """Refuse before asking anything: an existing file needs --force, a folder never goes."""
    if path.is_dir():
        raise UsageError(f"{path} is a directory: give the path of the new .yaml file")
    if (path.exists() or path.is_symlink()) and not force:
        raise UsageError(f"{path} already exists: pass --force to overwrite it")


def write_environment(path: Path, text: str, force: bool) -> None:
    """Write ``text`` to ``path``, mode 0644; never clobber without ``force``; never half."""
    data = text.encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not force:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.fchmod(fd, 0o644)  # whatever the umask
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            return
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except FileExistsError:
        raise UsageError(f"{path} already exists: pass --force to overwrite it") from None
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from e


def init_environment(path: Path, given: Given, *, prompter: Prompter | None,
                     accept_defaults: bool, force: bool, note: Say) -> Answers:
    """Ask or take every value, render the file, prove it loads, write it; the answers."""
    from provisioner.config import parse
    from provisioner.errors import ConfigError

    check_target(path, force)
    answers = collect(given, prompter, accept_defaults, default_name(path),
                      lambda: account_catalog(note))
    text = render(answers)
    try:
        parse(text.encode(), str(path))
    except ConfigError as e:  # a bug here, not the user's: say so and write nothing
        raise ProvisionError(f"internal error: the file init made does not validate, so it "
                             f"was not written; please report it:\n{e}") from e
    write_environment(path, text, force)
    for line in notes(answers):
        note(line)
    return answers
