"""Names of the DigitalOcean load balancers an environment makes: ``<env>.<component>``.

The cloud controller manager finds a Service's load balancer by the name in its
``service.beta.kubernetes.io/do-loadbalancer-name`` annotation among every load balancer
of the account, and updates the one it finds (digitalocean-cloud-controller-manager
v0.1.68, cloud-controller-manager/do/loadbalancers.go: ``retrieveLoadBalancer`` lists
them all unless the Service carries ``kubernetes.digitalocean.com/load-balancer-id``, then
``findLoadBalancerByName`` compares ``lb.Name``). ``<env>-<app>`` was ambiguous: env
``prod`` with app ``eu-api`` and env ``prod-eu``'s API (``prod-eu-api``) are one name, and
the first CCM to look would take the other environment's load balancer over.

Environment and app names are DNS labels (letters, digits, '-'), so they never contain a
dot: with a dot between them, ``<env>.<component>`` names exactly one (environment,
component) pair. DigitalOcean accepts the dot: names of at most 255 characters, starting
alphanumeric, of alphanumerics, '.' and '-', not ending in '-' (the CCM's
docs/controllers/services/annotations.md at v0.1.68); two labels of at most 63 characters
and a dot stay well within that. The API load balancer (terraform/api-endpoint.tf) is
``<env>.api``; an app called ``api`` exposed through a load balancer would be the same
name, which validation refuses (config/crosscheck.py).

Once the CCM has created an app's load balancer it writes the load balancer's id into
the Service (``kubernetes.digitalocean.com/load-balancer-id``, ``updateServiceAnnotation``
after ``Create``) and looks it up by id from then on; provision applies its Services
server-side and never owns that annotation, so the pin survives every deploy.
"""

from __future__ import annotations

SEPARATOR = "."
API = "api"
NAME_ANNOTATION = "service.beta.kubernetes.io/do-loadbalancer-name"
ID_ANNOTATION = "kubernetes.digitalocean.com/load-balancer-id"


def load_balancer(env_name: str, component: str) -> str:
    """``<env>.<component>``: the API (component ``api``) or an app."""
    return f"{env_name}{SEPARATOR}{component}"


def api_load_balancer(env_name: str) -> str:
    """The name terraform/api-endpoint.tf gives the API's load balancer."""
    return load_balancer(env_name, API)
