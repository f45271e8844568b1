"""Blue/green: which colour serves now, which one a deploy should roll out to.

The Service's selector names the serving colour. A deploy whose template differs from the
serving Deployment's goes to the other colour, which runs beside the serving one until it is
healthy; then the Service switches. The colour that served before stays, scaled as it was,
for an instant rollback, until the next deploy replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provisioner.config.model import App, Environment
from provisioner.kube import Kube, KubeError
from provisioner.render.manifests import COLOUR_LABEL
from provisioner.workloads.kinds import KINDS
from provisioner.workloads.objects import TEMPLATE_HASH

COLOURS = ("blue", "green")
PREVIOUS = "provision.dev/previous-colour"


def other(colour: str) -> str:
    """The colour that is not ``colour``."""
    return COLOURS[1] if colour == COLOURS[0] else COLOURS[0]


@dataclass(frozen=True)
class Plan:
    """For one blue/green app: the serving colour, the target, whether the template changed."""

    app: str
    serving: str | None
    target: str

    @property
    def switching(self) -> bool:
        """A new colour will take over the Service."""
        return self.serving is not None and self.serving != self.target


def serving_colour(kube: Kube, env: Environment, app: App) -> tuple[str | None, dict[str, Any]]:
    """The colour the app's Service selects now (None before the first deploy), and it."""
    try:
        service = kube.request("GET", KINDS["Service"].path(env.namespace, app.name))
    except KubeError as e:
        if e.status == 404:
            return None, {}
        raise
    colour = ((service.get("spec") or {}).get("selector") or {}).get(COLOUR_LABEL)
    return (colour if colour in COLOURS else None), service


def _template_hash(deployment: dict[str, Any]) -> str | None:
    template = (deployment.get("spec") or {}).get("template") or {}
    value = ((template.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_HASH)
    return str(value) if value is not None else None


def plan_colour(kube: Kube, env: Environment, app: App,
                desired_template: dict[str, Any]) -> Plan:
    """Where this deploy of a blue/green app goes."""
    serving, _ = serving_colour(kube, env, app)
    if serving is None:
        return Plan(app.name, None, COLOURS[0])
    try:
        live = kube.request("GET", KINDS["Deployment.apps"].path(env.namespace,
                                                                 f"{app.name}-{serving}"))
    except KubeError as e:
        if e.status == 404:
            return Plan(app.name, serving, serving)
        raise
    # Compared by the hash provision stamped on the template, not field by field: the API
    # server adds defaults, so a live template never equals the one that was sent.
    same = _template_hash(live) == _template_hash({"spec": {"template": desired_template}})
    return Plan(app.name, serving, serving if same else other(serving))
