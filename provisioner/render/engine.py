"""The Jinja environment every artefact is rendered with."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2

from provisioner.errors import RenderError
from provisioner.render.filters import FILTERS
from provisioner.resources import data_dir


@cache
def environment() -> jinja2.Environment:
    """Strict (undefined names fail), no HTML escaping, our serializing filters."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_dir("templates"))),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    return env


def render(template: str, **context: Any) -> str:
    """Render one template, turning Jinja failures into RenderError."""
    try:
        return environment().get_template(template).render(**context)
    except jinja2.TemplateError as e:
        raise RenderError(f"template {template}: {e}") from e
