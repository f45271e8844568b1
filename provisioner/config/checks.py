"""Value checks shared by the config sections.

Each check takes the text a user wrote and returns ``None`` when it is fine, or a
``(problem, hint)`` pair that names what is wrong and how to fix it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

Problem = tuple[str, str] | None
Check = Callable[[str], Problem]

# Kubernetes minors with upstream support on the release this table was last updated for.
# Each minor is supported for about 14 months; keep this in step with the release calendar.
SUPPORTED_MINORS: dict[str, str] = {
    "1.35": "2027-02-28",
    "1.36": "2027-06-28",
    "1.37": "2027-10-28",
}

# Patterns end in \Z, not $: `$` also matches before a final newline, which would let
# "prod\n" through as a name. Those using \d or \w are compiled with re.ASCII: in Python's
# default Unicode mode they also match Arabic-Indic or full-width digits, which kubeadm,
# apt and Go's regexp (where \d and \w are ASCII only) reject.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_VERSION = re.compile(r"^v?(1)\.(\d+)\.(\d+)\Z", re.ASCII)
_REGION = re.compile(r"^[a-z]{3}[0-9]\Z")
_SIZE = re.compile(r"^[a-z0-9_]+(-[a-z0-9_]+)+\Z")
_SSH_FINGERPRINT = re.compile(r"^([0-9a-f]{2}:){15}[0-9a-f]{2}\Z")
_DO_TAG = re.compile(r"^[A-Za-z0-9_:-]{1,255}\Z")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*\Z")
_POSIX_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_QUANTITY = re.compile(r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?\Z")
_PERCENT_OR_INT = re.compile(r"^(\d+%|\d+)\Z", re.ASCII)
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)\Z", re.ASCII)
_IMAGE = re.compile(
    r"^(?:(?P<domain>(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)"
    r"(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?\Z",
    re.ASCII,
)

# Ranges DigitalOcean uses itself (10.229/16 in every region; the others for its managed
# Kubernetes): a VPC there could not be created or would clash with platform traffic.
DO_RESERVED = tuple(ipaddress.ip_network(n) for n in ("10.229.0.0/16", "10.244.0.0/16",
                                                      "10.245.0.0/16", "10.246.0.0/24"))
PRIVATE_V4 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12",
                                                     "192.168.0.0/16"))


def _is_id(value: str) -> bool:
    """A numeric id as DigitalOcean writes it: ASCII digits (str.isdigit also takes '²')."""
    return value.isascii() and value.isdigit()


def dns_label(value: str) -> Problem:
    """A DNS-1123 label: what Kubernetes and DigitalOcean accept as a name."""
    if len(value) > 63:
        return f"{value!r} is {len(value)} characters", "a name has at most 63"
    if not _DNS_LABEL.match(value):
        fixed = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-") or "app"
        return (f"{value!r} is not a DNS-1123 label",
                f"lower-case letters, digits and '-', starting and ending alphanumeric,"
                f" e.g. {fixed!r}")
    return None


def dns_subdomain(value: str) -> Problem:
    """A DNS-1123 subdomain (storage class names)."""
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        return f"{value!r} is not a DNS-1123 subdomain", "e.g. 'do-block-storage'"
    return None


def kubernetes_version(value: str) -> Problem:
    """A full ``1.MINOR.PATCH`` version of a currently supported minor."""
    match = _VERSION.match(value)
    supported = ", ".join(SUPPORTED_MINORS)
    if not match:
        return (f"{value!r} is not a Kubernetes version",
                f"write MAJOR.MINOR.PATCH in quotes, e.g. \"{list(SUPPORTED_MINORS)[-2]}.2\"")
    minor = f"{match.group(1)}.{match.group(2)}"
    if minor not in SUPPORTED_MINORS:
        return (f"Kubernetes {minor} is not a supported minor",
                f"supported minors are {supported}")
    return None


def region(value: str) -> Problem:
    """A DigitalOcean region slug such as ``fra1``."""
    if not _REGION.match(value):
        return f"{value!r} is not a region slug", "e.g. nyc3, fra1, ams3, sfo3, sgp1"
    return None


def size(value: str) -> Problem:
    """A DigitalOcean droplet size slug such as ``s-2vcpu-4gb``."""
    if not _SIZE.match(value):
        return f"{value!r} is not a droplet size slug", "e.g. s-2vcpu-4gb, c-4, g-2vcpu-8gb"
    return None


def control_plane_size(value: str) -> Problem:
    """kubeadm's preflight refuses control-plane nodes under 2 vCPUs or about 1.7 GB."""
    problem = size(value)
    if problem:
        return problem
    cpus = re.search(r"(\d+)vcpu", value)
    memory = re.search(r"(\d+)gb", value)
    if (cpus and int(cpus.group(1)) < 2) or (memory and int(memory.group(1)) < 2):
        return (f"{value!r} is too small for a control-plane node",
                "kubeadm needs at least 2 vCPUs and 2 GB, e.g. s-2vcpu-4gb")
    return None


def ssh_key(value: str) -> Problem:
    """An SSH key known to DigitalOcean, by MD5 fingerprint or numeric id."""
    if _is_id(value) or _SSH_FINGERPRINT.match(value):
        return None
    return (f"{value!r} is not an SSH key fingerprint or id",
            "use the MD5 fingerprint from `doctl compute ssh-key list`, e.g. 3b:16:bf:...:1c")


def do_tag(value: str) -> Problem:
    """A DigitalOcean tag name."""
    if not _DO_TAG.match(value):
        return f"{value!r} is not a valid tag", "letters, digits, ':', '-' and '_' only"
    return None


def project_name(value: str) -> Problem:
    """A DigitalOcean project name: free text, bounded."""
    if not value.strip() or len(value) > 175:
        return "a project name must be 1 to 175 characters", "use the name shown in the console"
    return None


def cidr(value: str) -> Problem:
    """Any IPv4 or IPv6 network, written without host bits."""
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        try:
            fixed = ipaddress.ip_network(value, strict=False)
        except ValueError:
            return f"{value!r} is not a CIDR", "e.g. 203.0.113.0/24 or 0.0.0.0/0"
        return f"{value!r} has host bits set", f"did you mean {fixed}?"
    return None


def private_cidr(value: str) -> Problem:
    """An RFC 1918 IPv4 network, as the VPC and cluster networks must be."""
    problem = cidr(value)
    if problem:
        return problem
    network = ipaddress.ip_network(value)
    if network.version != 4 or not any(network.subnet_of(p) for p in PRIVATE_V4):  # type: ignore[arg-type]
        return (f"{value} is not a private IPv4 range",
                "use 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16")
    return None


def vpc_cidr(value: str) -> Problem:
    """A DigitalOcean VPC range: private, /16 to /28, clear of DigitalOcean's own ranges."""
    problem = private_cidr(value)
    if problem:
        return problem
    network = ipaddress.ip_network(value)
    if not 16 <= network.prefixlen <= 28:
        return (f"a VPC range of /{network.prefixlen} is not allowed",
                "DigitalOcean VPCs are /16 to /28")
    for reserved in DO_RESERVED:
        if network.overlaps(reserved):
            return (f"{value} overlaps {reserved}, which DigitalOcean reserves",
                    "pick another range, e.g. 10.10.0.0/16")
    return None


def qualified_name(value: str) -> Problem:
    """A Kubernetes label or taint key, with optional DNS prefix."""
    prefix, _, name = value.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return (f"{value!r} has an invalid prefix",
                "prefix must be a DNS subdomain, e.g. example.com/")
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return f"{value!r} is not a valid key", "alphanumerics, '-', '_' and '.', at most 63"
    return None


def label_value(value: str) -> Problem:
    """A Kubernetes label value."""
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        return (f"{value!r} is not a valid label value",
                "alphanumerics, '-', '_' and '.', at most 63")
    return None


def env_name(value: str) -> Problem:
    """An environment variable name Kubernetes accepts."""
    if not _ENV_NAME.match(value):
        return f"{value!r} is not a valid environment variable name", "e.g. LOG_LEVEL"
    return None


def posix_env_name(value: str) -> Problem:
    """A variable name a shell or CI system can export."""
    if not _POSIX_ENV.match(value):
        return f"{value!r} is not a valid environment variable name", "e.g. PROD_DATABASE_URL"
    return None


def port_name(value: str) -> Problem:
    """An IANA service name, as Kubernetes requires for port names."""
    if len(value) > 15 or not _PORT_NAME.match(value) or not re.search("[a-z]", value):
        return f"{value!r} is not a valid port name", "at most 15 lower-case letters, digits, '-'"
    return None


def quantity(value: str) -> Problem:
    """A Kubernetes resource quantity such as ``250m`` or ``512Mi``."""
    if not _QUANTITY.match(value):
        return f"{value!r} is not a quantity", "e.g. 250m or 1 for CPU, 512Mi or 2Gi for memory"
    return None


def percent_or_count(value: str) -> Problem:
    """A rollout surge or unavailability: a count or a percentage."""
    if not _PERCENT_OR_INT.match(value):
        return f"{value!r} is neither a count nor a percentage", "e.g. 1 or 25%"
    return None


def image(value: str) -> Problem:
    """A pinned container image reference: a tag other than ``latest``, or a digest."""
    match = _IMAGE.match(value)
    if not match or len(value) > 255:
        return f"{value!r} is not an image reference", "e.g. ghcr.io/acme/api:1.4.2"
    if not match.group("digest") and match.group("tag") in (None, "latest"):
        return (f"{value!r} is not pinned",
                "give a version tag or digest; 'latest' makes rollback and drift detection lie")
    return None


def time_of_day(value: str) -> Problem:
    """A 24-hour ``HH:MM`` time."""
    if not _TIME.match(value):
        return f"{value!r} is not a time of day", 'write HH:MM in quotes, e.g. "09:00"'
    return None


def timezone(value: str) -> Problem:
    """An IANA time zone name."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: e.g. a name too long
        import difflib

        close = difflib.get_close_matches(value, sorted(available_timezones()), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "an IANA name such as Europe/Berlin"
        return f"{value!r} is not a time zone", hint
    return None


def absolute_path(value: str) -> Problem:
    """A path inside a container."""
    if not value.startswith("/") or "\n" in value or "\x00" in value:
        return f"{value!r} is not an absolute path", "e.g. /var/lib/data"
    return None


def http_path(value: str) -> Problem:
    """The path of an HTTP health check."""
    if not value.startswith("/") or any(c in value for c in "\r\n\x00 "):
        return f"{value!r} is not an HTTP path", "e.g. /healthz"
    return None


# `provision image build` names its snapshots provision-<env>-k8s-<version>-<time>; a name
# typed here is looked up exactly (Terraform's digitalocean_droplet_snapshot data source),
# so keep it to characters that need no quoting anywhere.
_SNAPSHOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}\Z")
SNAPSHOT_PREFIX = "snapshot:"


def droplet_image(value: str) -> Problem:
    """A DigitalOcean image slug, a numeric image id, or ``snapshot:<name>``."""
    if value.startswith(SNAPSHOT_PREFIX):
        name = value.removeprefix(SNAPSHOT_PREFIX)
        if _SNAPSHOT_NAME.match(name):
            return None
        return (f"{value!r} does not name a snapshot (letters, digits, '.', '_' and '-')",
                "e.g. snapshot:provision-prod-k8s-1.36.2-20261208t0020z, the name "
                "`provision image build` printed")
    if _is_id(value) or _SIZE.match(value):
        return None
    return (f"{value!r} is not an image slug or id",
            "e.g. ubuntu-24-04-x64, or snapshot:<name> for an image `provision image build` made")


def state_key(value: str) -> Problem:
    """An object key inside the state bucket."""
    if not value or value.startswith("/") or len(value) > 1024 or any(
            c in value for c in "\r\n\x00"):
        return f"{value!r} is not a usable object key", "e.g. prod/terraform.tfstate"
    return None


def url(value: str) -> Problem:
    """An http(s) URL, for an S3-compatible endpoint."""
    from urllib.parse import urlparse

    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or any(
            c in value for c in " \r\n\x00"):
        return f"{value!r} is not a URL", "e.g. https://fra1.digitaloceanspaces.com"
    return None


# What a kubelet may set on its own Node, as Kubernetes decides it:
# staging/src/k8s.io/kubelet/pkg/apis/well_known_labels.go (IsKubeletLabel: these keys, or
# a namespace that is or ends in .kubelet.kubernetes.io / .node.kubernetes.io) is what the
# kubelet checks its --node-labels against before starting, and the NodeRestriction
# admission plugin (plugin/pkg/admission/noderestriction/admission.go,
# getForbiddenCreateLabels) refuses every label in the node-restriction.kubernetes.io
# namespace, which exists so that only administrators can set it.
_KUBELET_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")
_KUBELET_KEYS = frozenset((
    "kubernetes.io/hostname", "topology.kubernetes.io/zone", "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type",
    "kubernetes.io/os", "kubernetes.io/arch", "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch"))
_NODE_RESTRICTION = "node-restriction.kubernetes.io"


def _in_namespace(namespace: str, suffix: str) -> bool:
    return namespace == suffix or namespace.endswith("." + suffix)


def node_label_key(value: str) -> Problem:
    """A label a kubelet may put on its own node."""
    problem = qualified_name(value)
    if problem:
        return problem
    namespace = value.partition("/")[0] if "/" in value else ""
    if _in_namespace(namespace, _NODE_RESTRICTION):
        return (f"{value!r} cannot be set by the kubelet",
                "node-restriction.kubernetes.io labels are refused to kubelets (NodeRestriction) "
                "so that only administrators set them; label the node with kubectl, or use "
                "your own prefix, e.g. example.com/role")
    reserved = _in_namespace(namespace, "kubernetes.io") or _in_namespace(namespace, "k8s.io")
    if reserved and value not in _KUBELET_KEYS and not any(
            _in_namespace(namespace, n) for n in _KUBELET_NAMESPACES):
        return (f"{value!r} is reserved for Kubernetes",
                "kubelets may only set kubernetes.io labels under node.kubernetes.io/; "
                "use your own prefix, e.g. example.com/role")
    return None


def user_tag(value: str) -> Problem:
    """A DigitalOcean tag the user adds; ``provision:`` tags select roles and are ours."""
    problem = do_tag(value)
    if problem:
        return problem
    if value.lower().startswith("provision:"):
        return (f"{value!r} uses the reserved 'provision:' prefix",
                "provision tags droplets by role with it; choose another tag")
    return None


def app_name(value: str) -> Problem:
    """An app name: a DNS-1035 label (Service names start with a letter), room for suffixes."""
    problem = dns_label(value)
    if problem:
        return problem
    if not value[0].isalpha():
        return f"{value!r} starts with a digit", "Service names must start with a letter"
    if len(value) > 50:
        return (f"{value!r} is {len(value)} characters",
                "at most 50: provision adds suffixes such as -headless and -green")
    return None


def namespace(value: str) -> Problem:
    """The apps' namespace: not one of the cluster's own."""
    problem = dns_label(value)
    if problem:
        return problem
    if value in ("default", "kube-system", "kube-public", "kube-node-lease"):
        return (f"{value!r} belongs to the cluster",
                "provision labels the namespace with its Pod Security level; use your own")
    return None
