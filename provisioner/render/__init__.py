"""Rendering: Environment -> Terraform module, cloud-init per role, manifests per app."""

from provisioner.render.artefacts import render_environment

__all__ = ["render_environment"]
