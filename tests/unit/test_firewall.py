"""The rendered firewall rules, rule by rule: what each role accepts, from where, and why."""

from __future__ import annotations

from provisioner.render.firewall import all_rules
from tests.support.rendering import example


def table(name: str) -> dict[str, list[tuple[str, str, tuple[str, ...], tuple[str, ...]]]]:
    return {role: [(r.protocol, r.port_range, r.source_addresses, r.source_tags) for r in rules]
            for role, rules in all_rules(example(name)).items()}


def test_production_controllers() -> None:
    assert table("production")["controllers"] == [
        ("udp", "8473", (), ("controllers",)),  # VRRP inside VXLAN, control plane only
        ("tcp", "6443", ("203.0.113.0/24", "198.51.100.7/32", "10.10.0.0/16"), ("cluster",)),
        ("tcp", "2379-2380", (), ("controllers",)),  # etcd only between control-plane nodes
        ("tcp", "22", ("203.0.113.0/24",), ()),
        ("tcp", "10250", (), ("cluster",)),  # kubelet only from the cluster
        ("udp", "4789", (), ("cluster",)),  # Calico VXLAN
        ("icmp", "", ("10.10.0.0/16",), ()),
    ]


def test_production_workers_open_load_balancer_paths_only_to_the_vpc() -> None:
    assert table("production")["workers"] == [
        ("tcp", "22", ("203.0.113.0/24",), ()),
        ("tcp", "10250", (), ("cluster",)),
        ("udp", "4789", (), ("cluster",)),
        ("icmp", "", ("10.10.0.0/16",), ()),
        ("tcp", "30000-32767", ("10.10.0.0/16",), ()),
        ("tcp", "10256", ("10.10.0.0/16",), ()),
    ]


def test_staging_single_node_control_plane_and_a_node_port() -> None:
    rules = table("staging")
    assert not any(port == "8473" for _, port, _, _ in rules["controllers"]), (
        "no VRRP tunnel with one control-plane node")
    assert ("udp", "8472", (), ("cluster",)) in rules["workers"]  # Flannel VXLAN
    assert ("tcp", "30080", ("0.0.0.0/0", "::/0"), ()) in rules["workers"]
    assert not any(port == "30000-32767" for _, port, _, _ in rules["workers"])


def test_every_rule_says_why() -> None:
    for name in ("production", "staging"):
        for rules in all_rules(example(name)).values():
            assert all(r.purpose and len(r.purpose) > 10 for r in rules)
