"""The one place a command meets a fleet file: detect it, loop over its environments, sum up.

A command decorated with :func:`fleet_aware` runs as before on an environment file. On a
fleet file (top-level ``fleet:``) it runs once per environment, canary first, then the waves
(``destroy`` in reverse), each with that environment's own file and work folder, then prints
one summary (text, or inside the one JSON document with ``--output json``) and exits with
the worst exit code. A failing environment stops a command that changes things (later
environments are left untouched, listed as skipped); read-only commands go on.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

from provisioner.errors import EXIT_POLICY, ConfigError, ProvisionError, UsageError

F = TypeVar("F", bound=Callable[..., Any])
Extra = Callable[[Any, list[Any], dict[str, Any]], dict[str, Any]]

READ_ONLY = frozenset({"validate", "plan", "status", "check"})
# Options that name one environment's things: meaningless for several at once.
ONE_ENVIRONMENT = {"workdir": "--workdir", "kubeconfig": "--kubeconfig",
                   "context": "--context", "out": "--out", "saved_plan": "--plan",
                   "replace": "--replace", "web": "--web"}


def fleet_of(config: Path | None) -> Any:
    """The loaded fleet when ``config`` is a fleet file, else None."""
    from provisioner.fleet.reader import is_fleet_file, load_fleet

    if config is None or not is_fleet_file(config):
        return None
    return load_fleet(config)


def refuse_one_environment_options(kwargs: dict[str, Any]) -> None:
    for key, flag in ONE_ENVIRONMENT.items():
        if kwargs.get(key):
            raise UsageError(f"{flag} names one environment's own; with a fleet file each "
                             "environment uses its own (run the command on that "
                             "environment's file to use it)")


def run_each(fleet: Any, command: str, body: Callable[[Path], None], *, as_json: bool,
             reverse: bool = False) -> list[Any]:
    """``body`` on each environment's file in rollout order; the outcomes."""
    from provisioner.cli.common import console
    from provisioner.fleet.summary import FAILED, OK, Outcome
    from provisioner.ui.output import emit_text

    out = console()
    order = fleet.ordered()[::-1] if reverse else fleet.ordered()
    outcomes = [Outcome(m.name, m.written, stage) for stage, m in order]
    for outcome, (_stage, member) in zip(outcomes, order, strict=True):
        if not as_json:
            emit_text(f"== {member.name} ({outcome.stage}): provision {command} "
                      f"{member.written}\n")
        captured = io.StringIO()
        code, detail = 0, ""
        try:
            with contextlib.redirect_stdout(captured) if as_json else contextlib.nullcontext():
                body(member.path)
        except SystemExit as e:  # the command's own exit code, its message already shown
            code = e.code if isinstance(e.code, int) else (1 if e.code else 0)
        except ProvisionError as e:
            out.error(str(e), located=isinstance(e, ConfigError))
            code, detail = e.exit_code, str(e).splitlines()[0] if str(e) else ""
        outcome.exit_code = code
        outcome.status = (OK if code in (0, 4) else "refused" if code == EXIT_POLICY
                          else FAILED)
        outcome.detail = detail
        if as_json:
            text = captured.getvalue()
            try:
                outcome.result = json.loads(text) if text.strip() else None
            except ValueError:
                outcome.result = text
        if code not in (0, 4) and command not in READ_ONLY:
            out.error(f"{member.name} failed: the fleet stops here; "
                      f"{len(outcomes) - outcomes.index(outcome) - 1} environment(s) left "
                      "untouched")
            break
    return outcomes


def finish(fleet: Any, command: str, outcomes: list[Any], as_json: bool,
           extra: dict[str, Any] | None = None, text: str = "", code: int = 0) -> None:
    """The one summary, then exit with the worst code (``code``: a fleet-wide step's)."""
    from provisioner.fleet.summary import as_json as summary_json
    from provisioner.fleet.summary import format_summary, worst
    from provisioner.ui.output import emit_json, emit_text

    if as_json:
        emit_json(summary_json(fleet.name, command, outcomes, extra))
    else:
        emit_text(text + format_summary(fleet.name, command, outcomes))
    code = worst([code, *(o.exit_code for o in outcomes)])
    if code:
        sys.exit(code)


def fleet_aware(command: str, *, reverse: bool = False, extra: Extra | None = None,
                handler: Callable[..., None] | None = None,
                before: Callable[[Any, dict[str, Any]], None] | None = None
                ) -> Callable[[F], F]:
    """Let ``command`` take a fleet file as its CONFIG (see the module's docstring).

    ``extra(fleet, outcomes, kwargs)`` adds fleet-wide results to the summary (JSON keys;
    "text" is printed before the summary, "exit_code" joins the environments' worst);
    ``handler(fleet, **kwargs)`` replaces the loop (deploy's gated rollout);
    ``before(fleet, kwargs)`` runs ahead of the loop (destroy: the global load balancer
    first), its error stopping the command before any environment.
    """
    def decorate(func: F) -> F:
        @wraps(func)
        def wrapper(**kwargs: Any) -> Any:
            fleet = fleet_of(kwargs.get("config"))
            if fleet is None:
                return func(**kwargs)
            refuse_one_environment_options(kwargs)
            if handler is not None:
                return handler(fleet, **kwargs)
            as_json = kwargs.get("output") == "json"
            if before is not None:
                before(fleet, kwargs)
            outcomes = run_each(fleet, command,
                                lambda path: func(**{**kwargs, "config": path}),
                                as_json=as_json, reverse=reverse)
            added = extra(fleet, outcomes, kwargs) if extra is not None else {}
            text = added.pop("text", "")
            code = int(added.pop("exit_code", 0))
            finish(fleet, command, outcomes, as_json, added, text, code)
            return None

        return wrapper  # type: ignore[return-value]

    return decorate
