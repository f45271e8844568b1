"""Ownership decided from exact facts: environments whose names share prefixes never match.

The load balancer `tag` is the droplet selector ("The name of a Droplet tag corresponding to
Droplets assigned to the load balancer": digitalocean/openapi,
specification/resources/load_balancers/models/attributes.yml at 30504aa), so only an exact
role tag, or a name the environment defines with every target one of its droplets, proves a
load balancer is the environment's.
"""

from __future__ import annotations

from provisioner.cloud.ownership import identity
from tests.support.rendering import example

PROD = example("production")  # name: prod, pool general, app api behind a load balancer


def test_tags_and_names_are_the_environments_own() -> None:
    me = identity(PROD)
    assert me.tag == "provision:prod"
    assert me.role_tags == {"provision:prod", "provision:prod:controller",
                            "provision:prod:worker", "provision:prod:pool:general"}
    assert "prod.api" in me.load_balancers  # the API endpoint's, and the app api's
    assert me.firewalls == {"prod-controllers", "prod-workers"}


def test_a_neighbours_load_balancer_is_not_ours() -> None:
    me = identity(PROD)
    ours, theirs = {101, 102}, {201}
    # prod2's API load balancer: its target tag contains "provision:prod" but is not ours.
    assert not me.lb_is_ours("prod2.api", "provision:prod2:controller", [], ours)
    # prod-eu's: the name starts with "prod-"; its targets are prod-eu's droplets.
    assert not me.lb_is_ours("prod-eu.api", None, theirs, ours)
    # A name prod defines is not enough: every target must be prod's, and there must be one.
    assert not me.lb_is_ours("prod.api", None, theirs, ours)
    assert not me.lb_is_ours("prod.api", None, [101, 201], ours)
    assert not me.lb_is_ours("prod.api", None, [], ours)
    assert me.lb_is_ours("prod.api", None, [101, 102], ours)
    assert me.lb_is_ours("anything", "provision:prod:controller", [], ours)


def test_firewalls_need_our_name_and_only_our_tags() -> None:
    me = identity(PROD)
    assert me.firewall_is_ours("prod-workers", ["provision:prod:worker"])
    assert not me.firewall_is_ours("prod-workers", ["provision:prod2:worker"])
    assert not me.firewall_is_ours("prod-workers", ["provision:prod:worker", "web"])
    assert not me.firewall_is_ours("prod-workers", [])
    assert not me.firewall_is_ours("prod2-workers", ["provision:prod:worker"])
