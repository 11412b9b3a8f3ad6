"""What the Azure Functions host does for this app, done locally (no host can be installed
here): route an Event Grid event to the functions whose event subscription matches it,
decode it with the worker's own converter, invoke the function; poll the containment
queue and invoke the queue function with the host's retry and poison-queue behaviour.
"""
from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.queue import QueueMessageInConverter

log = logging.getLogger("localazure.host")


@dataclass
class Invocation:
    function: str
    error: BaseException | None = None


_indexed: dict[int, dict[str, Any]] = {}


class NoFunction(KeyError):
    """No function of the app answers this trigger (a name, a timer, an HTTP route): told
    apart from a KeyError raised inside a function the host ran."""


def index(app: func.FunctionApp) -> dict[str, Any]:
    """The app's functions by name, as the worker indexes them: once per app (a second
    get_functions() call refuses the names it has already seen)."""
    if id(app) not in _indexed:
        _indexed[id(app)] = {f.get_function_name(): f for f in app.get_functions()}
    return _indexed[id(app)]


def user_function(app: func.FunctionApp, name: str):
    try:
        return index(app)[name].get_user_function()
    except KeyError:
        raise NoFunction(f"the app has no function named {name!r}") from None


def subscribers(event: dict) -> list[str]:
    """The Event Grid functions whose subscription filter admits this event."""
    # Imported here: the routing table imports the app's detection modules, which a host
    # only loads when a function first runs (bench/cold_start.py times exactly that).
    from containment.deployment import EVENT_SUBSCRIPTIONS

    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    return [name for name, subscription in EVENT_SUBSCRIPTIONS.items() if subscription.admits(event.get("eventType"),
                                                                                                data.get("operationName"))]


def deliver_event(app: func.FunctionApp, event: dict) -> list[Invocation]:
    """Deliver one Event Grid event (Event Grid schema) as the host would."""
    invocations = []
    for name in subscribers(event):
        invocation = Invocation(name)
        try:
            decoded = EventGridEventInConverter.decode(func.meta.Datum(json.dumps(event), "json"), trigger_metadata={})
            user_function(app, name)(decoded)
        except Exception as error:  # noqa: BLE001 - the host logs a failed invocation and goes on
            log.warning("function %s failed on event %s: %s", name, event.get("id"), error)
            invocation.error = error
        invocations.append(invocation)
    return invocations


def fire_timer(app: func.FunctionApp, name: str, past_due: bool = False) -> Invocation:
    """Invoke a timer-triggered function once, decoded as the host hands it over."""
    from azure.functions.timer import TimerRequestConverter

    function = index(app).get(name)
    if function is None or not any(b["type"] == "timerTrigger" for b in json.loads(function.get_function_json())["bindings"]):
        raise NoFunction(f"the app has no timer-triggered function named {name!r}")
    invocation = Invocation(name)
    timer = TimerRequestConverter.decode(func.meta.Datum(json.dumps({"IsPastDue": past_due}), "json"),
                                         trigger_metadata={})
    try:
        function.get_user_function()(timer)
    except Exception as error:  # noqa: BLE001 - the host logs a failed invocation and goes on
        log.warning("function %s failed: %s", name, error)
        invocation.error = error
    return invocation


def call_http(app: func.FunctionApp, method: str, route: str, body: Any = None,
              headers: dict[str, str] | None = None) -> func.HttpResponse:
    """Send one request to the HTTP function whose route template and methods match, as
    the host would after checking its function key."""
    import re
    from urllib.parse import parse_qsl, urlsplit

    path, query = urlsplit(route).path.strip("/"), dict(parse_qsl(urlsplit(route).query))
    for function in index(app).values():
        binding = next((b for b in json.loads(function.get_function_json())["bindings"]
                        if b["type"] == "httpTrigger"), None)
        if binding is None or method.lower() not in [m.lower() for m in binding.get("methods", [])]:
            continue
        template = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(binding["route"].strip("/")))
        match = re.fullmatch(template, path)
        if match is None:
            continue
        request = func.HttpRequest(method=method.upper(), url=f"http://localhost:7071/api/{path}",
                                   headers=headers or {}, params=query, route_params=match.groupdict(),
                                   body=json.dumps(body).encode() if body is not None else b"")
        return function.get_user_function()(request)
    raise NoFunction(f"no HTTP function serves {method} {route}")


def drain_queue(app: func.FunctionApp, function: str, queue, max_dequeue_count: int,
                max_rounds: int = 1000) -> list[Invocation]:
    """Run the queue function until its queue is empty: a failed message becomes visible
    again; after max_dequeue_count deliveries it moves to '<queue>-poison'."""
    from azure.storage.queue import QueueClient

    invocations = []
    handler = user_function(app, function)
    for _ in range(max_rounds):
        messages = list(queue.receive_messages(messages_per_page=16, visibility_timeout=30, max_messages=16))
        if not messages:
            return invocations
        for message in messages:
            body = base64.b64decode(message.content)
            metadata = {
                "Id": func.meta.Datum(message.id, "string"),
                "DequeueCount": func.meta.Datum(message.dequeue_count, "int"),
                "PopReceipt": func.meta.Datum(message.pop_receipt, "string"),
            }
            decoded = QueueMessageInConverter.decode(func.meta.Datum(body, "bytes"), trigger_metadata=metadata)
            invocation = Invocation(function)
            try:
                handler(decoded)
                queue.delete_message(message)
            except Exception as error:  # noqa: BLE001 - the host retries, then poisons
                log.warning("function %s failed on message %s (attempt %s): %r", function, message.id,
                            message.dequeue_count, error)
                invocation.error = error
                if message.dequeue_count >= max_dequeue_count:
                    poison = QueueClient.from_queue_url(queue.url + "-poison", credential=queue.credential)
                    _create(poison)
                    poison.send_message(message.content)
                    queue.delete_message(message)
                    log.error("message %s moved to %s-poison after %s attempts", message.id, queue.queue_name,
                              message.dequeue_count)
                else:
                    queue.update_message(message.id, message.pop_receipt, visibility_timeout=0)  # content kept
            invocations.append(invocation)
    raise RuntimeError(f"queue {queue.queue_name} did not drain in {max_rounds} rounds")


def _create(queue: Any) -> None:
    from azure.core.exceptions import ResourceExistsError

    try:
        queue.create_queue()
    except ResourceExistsError:
        pass
