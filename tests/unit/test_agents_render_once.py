"""Each node agent is turned into its shipped text once per process, whatever the size.

A command renders every role's user-data, and each worker pool's twice more for its
generation hash (render/names.py: worker_keys -> worker_generation), so one `plan` of the
production example scaled to 5 pools parsed and unparsed the same few agent files 18 times
(about 70 ms of a no-op plan's start, measured with bench/noop_plan.py's --profile). The
agents are files of the installed package; their shipped text cannot change while the
process runs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from provisioner.render import agents, render_environment
from provisioner.render.names import all_names
from tests.support.rendering import example


def test_rendering_five_pools_parses_each_agent_once(monkeypatch: pytest.MonkeyPatch) -> None:
    env = example("production")
    pool = env.worker_pools[0]
    env = replace(env, worker_pools=tuple(replace(pool, name=f"pool{i}") for i in range(5)))
    clear = getattr(agents.shipped_agent, "cache_clear", None)
    if clear is not None:
        clear()  # as in a fresh process
    parsed: list[str] = []
    real = agents.shipped_text

    def counting(source: str) -> Any:
        parsed.append(source)
        return real(source)

    monkeypatch.setattr(agents, "shipped_text", counting)
    render_environment(env)
    all_names(env)
    assert parsed, "the user-data carries the agents"
    assert len(parsed) == len(set(parsed))
