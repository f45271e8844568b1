"""What in a DigitalOcean account belongs to one environment, decided from exact facts only.

Environment and pool names are DNS-1123 labels (no colon), so the tag ``provision:<name>``
compared by equality names exactly one environment, and so do its role tags
(``provision:<name>:controller`` ...). Names are not identities: ``prod-eu-api`` is the
API load balancer of ``prod-eu`` and could be the load balancer of an app ``eu-api`` of
``prod``; nothing here matches by prefix or substring.

* droplets and volumes: carry the tag ``provision:<name>`` (exact list membership); a
  droplet of `provision image build` carries ``provision:<name>:image-build`` instead (it
  is no node: `up`, `status` and Terraform never count it), and is the environment's too;
* load balancers: DigitalOcean's ``tag`` field is the droplet selector, the targets ("The
  name of a Droplet tag corresponding to Droplets assigned to the load balancer",
  digitalocean/openapi load_balancers/models/attributes.yml), not an ownership label. A load
  balancer is ours when its target tag is one of our role tags exactly, or when its name is
  one the environment defines and every droplet it targets (at least one) is ours;
* floating IPs: the address the environment's state recorded, or one held by our droplet;
* firewalls: a name the environment defines and selecting only our role tags.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from provisioner import lb_names
from provisioner.cloud.tags import env_tag, pool_tag
from provisioner.config.model import Environment


def image_build_tag(name: str) -> str:
    """The tag of an environment's temporary image build droplets (cloud/image_build.py)."""
    return f"{env_tag(name)}:image-build"


@dataclass(frozen=True)
class Identity:
    """The exact tags and names one environment gives what it creates."""

    name: str
    tag: str  # provision:<name>, on every droplet
    role_tags: frozenset[str]  # the tag itself, controller, worker and pool tags
    load_balancers: frozenset[str]  # <name>.api and the apps' <name>.<app> (lb_names.py)
    firewalls: frozenset[str]
    image_build: str = ""  # provision:<name>:image-build

    def lb_is_ours(self, name: str, target_tag: str | None, droplet_ids: Iterable[int],
                   our_droplets: Collection[int]) -> bool:
        """Exact target tag, or a name we define with every target one of our droplets."""
        if target_tag and target_tag in self.role_tags:
            return True
        targets = {int(d) for d in droplet_ids}
        return name in self.load_balancers and bool(targets) and targets <= set(our_droplets)

    def firewall_is_ours(self, name: str, tags: Iterable[str]) -> bool:
        """A firewall we name that selects droplets by our role tags only."""
        selected = set(tags)
        return name in self.firewalls and bool(selected) and selected <= self.role_tags


def identity(env: Environment) -> Identity:
    """The environment's exact tags and names, as the module and the manifests make them."""
    tag = env_tag(env.name)
    roles = {tag, f"{tag}:controller", f"{tag}:worker"}
    roles.update(pool_tag(env.name, pool.name) for pool in env.worker_pools)
    balancers = {lb_names.api_load_balancer(env.name)}  # terraform/api-endpoint.tf
    # render/manifests.py annotates each LoadBalancer Service with this name for the CCM.
    balancers.update(lb_names.load_balancer(env.name, app.name) for app in env.apps
                     if app.expose == "load_balancer")
    return Identity(env.name, tag, frozenset(roles), frozenset(balancers),
                    frozenset({f"{env.name}-controllers", f"{env.name}-workers"}),
                    image_build_tag(env.name))
