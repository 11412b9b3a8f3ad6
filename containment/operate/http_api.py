"""The HTTP adapter for the operator functions: who asks (an authenticated principal with
the route's app role, or nothing happens), request in, JSON out, every refusal recorded."""
from __future__ import annotations

import json
import logging
import os
from typing import Any
from urllib.parse import urlsplit

from containment.adapters.runtime import current
from containment.operate import controls, incidents, principal

log = logging.getLogger("containment")


def required_role(what: str, method: str) -> str | None:
    """The app role an operator route asks of its caller (containment.operate.principal);
    None where it depends on what is settled (an approval, or a second operator's
    confirmation, which asks the role of the request it confirms: controls._settle)."""
    if what in ("pending", "incidents", "incident") or (what in ("exemptions", "mutes") and method == "GET"):
        return principal.READ
    return {"approve": None, "deny": None, "contain": principal.BREAK_GLASS, "release": principal.RELEASE,
            "exemptions": principal.EXEMPT, "mutes": principal.MUTE, "incident-decision": principal.ASSESS}[what]


def respond(req: Any, what: str):
    import azure.functions as func

    path = urlsplit(req.url).path
    try:
        who = principal.authenticate(req.headers, os.environ)
    except principal.Unauthenticated as why:
        # Before any storage or ARM call: an unauthenticated caller reaches nothing, not even the ledger.
        log.error("UNAUTHENTICATED operator request refused: %s %s: %s", req.method, path, why)
        return func.HttpResponse(json.dumps({"error": str(why)}), status_code=401, mimetype="application/json")
    runtime = current()
    raw, body = req.get_body(), None
    role = required_role(what, req.method)
    if role is not None and not who.holds(role):
        status, answer = 403, {"error": f"{who.name} does not hold the app role {role}"}
    else:
        try:
            body = req.get_json() if raw else None
        except (ValueError, RecursionError):  # not JSON, or nested deeper than can be read
            status, answer = 400, {"error": "the body is not JSON"}
        else:
            status, answer = _dispatch(runtime, req, what, body, who)
    if 400 <= status < 500 and "decision" not in answer:  # a refusal naming a decision recorded it
        controls.refused(runtime, req.method, path, who, raw, _named(req, body), status, answer["error"])
    log.info("operator %s (%s): %s %s -> %s", who.name, who.object_id, req.method, path, status)
    return func.HttpResponse(json.dumps(answer), status_code=status, mimetype="application/json")


def _named(req: Any, body: Any) -> Any:
    """The resource a request names: the body's resourceId or scope, or the scope parameter."""
    if isinstance(body, dict):
        return body.get("resourceId", body.get("scope"))
    return req.params.get("scope")


def _dispatch(runtime, req, what: str, body: Any, who: principal.Principal) -> tuple[int, dict]:
    if what == "pending":
        return controls.list_pending(runtime)
    if what == "incidents":
        return incidents.list_incidents(runtime, req.params.get("since"), req.params.get("until"))
    if what == "incident":
        return incidents.show(runtime, req.route_params.get("incident", ""))
    if what == "incident-decision":
        return incidents.decide(runtime, req.route_params.get("incident", ""), req.route_params.get("verb", ""),
                                body, who)
    if what in ("approve", "deny"):
        return getattr(controls, what)(runtime, req.route_params.get("key", ""), who)
    if what == "contain":
        return controls.contain_now(runtime, body, who)
    if what == "release":
        return controls.release(runtime, body, who)
    if what == "mutes":
        if req.method == "GET":
            return controls.list_mutes(runtime)
        if req.method == "DELETE":
            return controls.remove_mute(runtime, req.params.get("rule", ""), req.params.get("scope", ""), who)
        return controls.add_mute(runtime, body, who)
    if req.method == "GET":
        return controls.list_exemptions(runtime)
    if req.method == "DELETE":
        return controls.remove_exemption(runtime, req.params.get("scope", ""), who)
    return controls.add_exemption(runtime, body, who)
