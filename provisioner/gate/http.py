"""One JSON GET for the gate's sources: standard library only, errors as GateError.

The sources are read once a poll during a bake; a failed read is reported (exit 1 at the
CLI) and the rollout decides what that means, so there is no retry here.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from .source import GateError

TIMEOUT = 30.0  # seconds: a slow monitoring answer is still an answer


def get_json(what: str, url: str, query: Mapping[str, str],
             headers: Mapping[str, str] | None = None) -> Any:
    """GET ``url?query`` and return the decoded JSON body, or raise a GateError saying
    ``what`` could not be read and why (status and the server's own message)."""
    request = urllib.request.Request(f"{url}?{urlencode(query)}", headers={
        "Accept": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            raw = response.read()
    except urllib.error.HTTPError as err:
        raise GateError(f"cannot read {what}: HTTP {err.code} {_message(err.read())}".rstrip()
                        ) from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise GateError(f"cannot read {what}: {reason}") from None
    try:
        return json.loads(raw)
    except ValueError:
        raise GateError(f"cannot read {what}: the answer is not JSON") from None


def _message(raw: bytes) -> str:
    """The error text a JSON error body carries (DigitalOcean's ``message``, Prometheus'
    ``error``), else nothing: an HTML error page is not worth printing."""
    try:
        body = json.loads(raw)
    except ValueError:
        return ""
    if isinstance(body, dict):
        for key in ("message", "error"):
            if isinstance(body.get(key), str):
                return f"({body[key]})"
    return ""
