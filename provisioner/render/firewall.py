"""The inbound firewall rules of each role, computed once.

Terraform receives these through terraform.tfvars.json and ``plan`` prints the same list, so
what the user reviews is exactly what is applied. Sources name tags by role key
(``cluster``, ``controllers``, ``workers``); the module resolves them to the tag resources.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from provisioner.config.model import Environment
from provisioner.render.cloudinit import VRRP_TUNNEL_PORT

ANYWHERE = ("0.0.0.0/0", "::/0")
NODE_PORT_RANGE = "30000-32767"
# Pod traffic between nodes travels inside the CNI's VXLAN tunnel (a UDP port): DigitalOcean
# firewalls pass only TCP, UDP and ICMP, so IP-in-IP encapsulation is not an option.
CNI_VXLAN_PORT = {"calico": "4789", "flannel": "8472"}


@dataclass(frozen=True)
class Rule:
    """One inbound rule of a DigitalOcean firewall."""

    purpose: str
    protocol: str
    port_range: str
    source_addresses: tuple[str, ...] = ()
    source_tags: tuple[str, ...] = field(default=())

    def as_tfvar(self) -> dict[str, object]:
        """The object shape of the module's ``firewall`` variable."""
        data = asdict(self)
        data["source_addresses"] = list(self.source_addresses)
        data["source_tags"] = list(self.source_tags)
        if not self.port_range:
            del data["port_range"]  # ICMP has no ports; the provider wants the field unset
        return data


def _shared(env: Environment) -> list[Rule]:
    rules = []
    if env.access.ssh_cidrs:
        rules.append(Rule("SSH from the allowed networks", "tcp", "22",
                          source_addresses=env.access.ssh_cidrs))
    rules += [
        Rule("kubelet API, for the API server and metrics-server", "tcp", "10250",
             source_tags=("cluster",)),
        Rule(f"pod network ({env.kubernetes.cni} VXLAN) between nodes", "udp",
             CNI_VXLAN_PORT[env.kubernetes.cni], source_tags=("cluster",)),
        Rule("ping and path MTU discovery inside the VPC", "icmp", "",
             source_addresses=(env.digitalocean.vpc_cidr,)),
    ]
    return rules


def controller_rules(env: Environment) -> list[Rule]:
    """Inbound rules of the control-plane droplets."""
    api_sources = tuple(dict.fromkeys((*env.access.api_cidrs, env.digitalocean.vpc_cidr)))
    failover = []
    if env.control_plane.endpoint == "floating_ip" and env.control_plane.count > 1:
        # keepalived's VRRP (IP protocol 112) cannot pass a DigitalOcean firewall, so it
        # travels in a VXLAN tunnel between the control-plane nodes.
        failover.append(Rule("VRRP between control-plane nodes, inside a VXLAN tunnel", "udp",
                             str(VRRP_TUNNEL_PORT), source_tags=("controllers",)))
    return [*failover,
        Rule("Kubernetes API from the allowed networks, the VPC and the cluster's nodes", "tcp",
             "6443", source_addresses=api_sources, source_tags=("cluster",)),
        Rule("etcd between control-plane nodes", "tcp", "2379-2380",
             source_tags=("controllers",)),
        *_shared(env),
    ]


def worker_rules(env: Environment) -> list[Rule]:
    """Inbound rules of the worker droplets: shared rules plus the apps' node ports."""
    rules = _shared(env)
    for app in env.apps:
        if app.expose != "node_port":
            continue
        for port in app.ports:
            if port.node_port is not None:
                rules.append(Rule(f"NodePort {port.node_port} of app {app.name}",
                                  port.protocol.lower(), str(port.node_port),
                                  source_addresses=ANYWHERE))
    balanced = [app for app in env.apps if app.expose == "load_balancer"]
    vpc = (env.digitalocean.vpc_cidr,)
    for protocol in ("tcp", "udp"):
        if any(p.protocol.lower() == protocol for app in balanced for p in app.ports):
            rules.append(Rule(f"{protocol.upper()} NodePorts behind the apps' DigitalOcean load "
                              "balancers (inside the VPC)", protocol, NODE_PORT_RANGE,
                              source_addresses=vpc))
    if balanced:
        # The cloud controller manager's load balancers health-check kube-proxy, not the app.
        rules.append(Rule("kube-proxy health checks from the apps' load balancers", "tcp",
                          "10256", source_addresses=vpc))
    return rules


def all_rules(env: Environment) -> dict[str, list[Rule]]:
    """Rules by firewall: ``controllers`` and ``workers``."""
    return {"controllers": controller_rules(env), "workers": worker_rules(env)}
