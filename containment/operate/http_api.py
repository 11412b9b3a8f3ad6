"""The HTTP adapter for the operator functions: request in, JSON out, who asked recorded."""
from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

from containment.adapters.runtime import current
from containment.operate import controls

log = logging.getLogger("containment")


def operator_of(req: Any) -> str:
    """Who asked: App Service Authentication's principal where the platform provides it,
    else the key holder (a function key proves access, not identity)."""
    headers = {k.lower(): v for k, v in req.headers.items()}
    return (headers.get("x-ms-client-principal-name") or headers.get("x-ms-client-principal-id")
            or "function-key holder (no authenticated principal)")


def respond(req: Any, what: str):
    import azure.functions as func

    runtime = current()
    who = operator_of(req)
    raw, body = req.get_body(), None
    try:
        body = req.get_json() if raw else None
    except (ValueError, RecursionError):  # not JSON, or nested deeper than can be read
        status, answer = 400, {"error": "the body is not JSON"}
    else:
        status, answer = _dispatch(runtime, req, what, body, who)
    if 400 <= status < 500 and "decision" not in answer:  # a refusal naming a decision recorded it
        controls.refused(runtime, req.method, urlsplit(req.url).path, who, raw, _named(req, body), status,
                         answer["error"])
    log.info("operator %s: %s %s -> %s", who, req.method, req.url, status)
    return func.HttpResponse(json.dumps(answer), status_code=status, mimetype="application/json")


def _named(req: Any, body: Any) -> Any:
    """The resource a request names: the body's resourceId or scope, or the scope parameter."""
    if isinstance(body, dict):
        return body.get("resourceId", body.get("scope"))
    return req.params.get("scope")


def _dispatch(runtime, req, what: str, body: Any, who: str) -> tuple[int, dict]:
    if what == "pending":
        return controls.list_pending(runtime)
    if what in ("approve", "deny"):
        return getattr(controls, what)(runtime, req.route_params.get("key", ""), who)
    if what == "contain":
        return controls.contain_now(runtime, body, who)
    if what == "release":
        return controls.release(runtime, body, who)
    if req.method == "GET":
        return controls.list_exemptions(runtime)
    if req.method == "DELETE":
        return controls.remove_exemption(runtime, req.params.get("scope", ""))
    return controls.add_exemption(runtime, body, who)
