"""The local Azure emulator: ARM and the Log Analytics query API on one loopback HTTPS port.

    with LocalAzure() as azure:
        azure.seed(resources=[...], logs={"StorageBlobLogs": [...]})
        azure.settings()  # {"LOCAL_AZURE_ENDPOINT": ..., "LOCAL_AZURE_CA_BUNDLE": ...}

The real SDK clients talk to it through `base_url` / `endpoint` and `connection_verify`.
Every app-facing exchange is captured so that Microsoft's oav can validate it.
"""
from __future__ import annotations

import json
import shutil
import socket
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

from localazure.arm import POLLING_PATH, Answer, ArmError, ArmState
from localazure.authorization import authorize_query
from localazure.certs import make_loopback_certificate
from localazure.faults import FaultPlan
from localazure.logs import LogStore, partial_error
from localazure.refusals import Refused

LOGS_QUERY = "/v1/workspaces/"
# The emulator has one workspace and answers under any ID; this is the one replay names.
WORKSPACE_ID = "00000000-0000-4000-8000-00000000a11a"
TOPIC_PATH = "/api/events"  # where an Event Grid custom topic takes events
# A request without a bearer token is 401; who the token names, and what that principal may
# do, is localazure/authorization.py's (ARM in ArmState.handle, Log Analytics here).
_BEARER = "bearer "
_WRITES = ("PUT", "PATCH", "DELETE", "POST")


@dataclass
class Exchange:
    method: str
    url: str
    request_headers: dict[str, str]
    request_body: Any
    status: int
    response_headers: dict[str, str]
    response_body: Any


class LocalAzure:
    def __init__(self, workdir: Path | None = None):
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="localazure-"))
        self.ca_bundle, cert, key = make_loopback_certificate(self.workdir / "tls")
        self.arm = ArmState(lambda: self.clock())
        self.logs = LogStore()
        self.faults = FaultPlan()
        self.traffic: list[Exchange] = []
        self.polls: list[Exchange] = []  # long-running operations' status reads
        self.notifications: list[dict] = []  # CloudEvents published to the topic endpoint
        # ARM writes carried out, as (method, path, status): with faults `after` the call, what
        # the caller saw (the traffic) is not what ARM did.
        self.applied_writes: list[tuple[str, str, int]] = []
        self._traffic_lock = threading.Lock()
        self.clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(cert, key)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> "LocalAzure":
        server = _Server(("127.0.0.1", 0), _Handler)
        server.socket = self._context.wrap_socket(server.socket, server_side=True)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="localazure", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
            self._server = None
        self.logs.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "LocalAzure":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def settings(self) -> dict[str, str]:
        """The app settings that point the app at this emulator."""
        return {"LOCAL_AZURE_ENDPOINT": self.endpoint, "LOCAL_AZURE_CA_BUNDLE": str(self.ca_bundle),
                "CONTAINMENT_NOTIFY_TOPIC_ENDPOINT": self.endpoint + TOPIC_PATH}

    # -- state ---------------------------------------------------------------------
    def seed(self, resources: list[dict] = (), logs: dict[str, list[dict]] | None = None) -> None:
        self.arm.seed(list(resources))
        for table, rows in (logs or {}).items():
            self.logs.seed(table, rows)

    def reset(self) -> None:
        self.clock = lambda: datetime.now(timezone.utc)
        self.arm = ArmState(lambda: self.clock())
        self.notifications.clear()
        self.logs.clear()
        self.logs.max_rows = LogStore.max_rows
        self.faults.clear()
        self.clear_traffic()

    def clear_traffic(self) -> None:
        with self._traffic_lock:
            self.traffic.clear()
            self.polls.clear()
            self.applied_writes.clear()

    def write_traffic(self, directory: Path) -> int:
        """Write the captured exchanges as oav traffic files; return how many."""
        from localazure.conformance import write_traffic_file

        with self._traffic_lock:
            exchanges = list(self.traffic)
        for exchange in exchanges:
            write_traffic_file(
                directory, exchange.method, exchange.url, exchange.request_headers,
                exchange.request_body, exchange.status, exchange.response_headers,
                exchange.response_body,
            )
        return len(exchanges)

    # -- one call ------------------------------------------------------------------
    def answer(self, method: str, target: str, headers: dict[str, str], body: Any,
               client_address: str | None = None) -> Answer | None:
        """The emulator's answer to one request (from `client_address`), or None to drop the connection."""
        parts = urlsplit(target)
        path = "/" + parts.path.lstrip("/")  # get_by_id sends '//subscriptions/...'
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        logs_call = path.lower().startswith(LOGS_QUERY)
        partial = False
        for fault in self.faults.take(method, path, body=body if isinstance(body, str) else json.dumps(body)):
            if fault.kind == "drop":
                return None
            if fault.kind == "slow":
                time.sleep(fault.delay)
            elif fault.kind == "etag-conflict":
                self.arm.concurrent_write(path)
            elif fault.kind == "partial-error":
                partial = True
            elif fault.kind == "status":
                return self._error(fault)
        if not headers.get("authorization", "").lower().startswith(_BEARER):
            error = ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
            return Answer(401, error.body())
        if path.lower() == TOPIC_PATH:
            return self.topic_answer(method, headers, body)
        if logs_call:
            query = body.get("query") if isinstance(body, dict) else None
            tables = tuple(table for table in self.logs.tables if isinstance(query, str) and table in query)
            try:
                authorize_query(self.arm.principals, headers["authorization"][len(_BEARER):].strip(), tables)
            except Refused as refused:
                return Answer(refused.status, {"error": {"code": refused.code, "message": refused.message}})
            status, response = self.logs_answer(method, path, body)
            if partial and status == 200:
                response = partial_error(response, "Injected fault: the query returned partial results.")
            return Answer(status, response)
        try:
            answer = self.arm.handle(method, path, query, headers, body, client_address)
        except ArmError as error:
            return Answer(error.status, error.body(), error.headers)
        if method in _WRITES and answer.status < 400:
            with self._traffic_lock:
                self.applied_writes.append((method, path, answer.status))
        for fault in self.faults.take(method, path, after=True,
                                      body=body if isinstance(body, str) else json.dumps(body)):
            if fault.kind == "drop":
                return None
            return self._error(fault)
        return answer

    @staticmethod
    def _error(fault) -> Answer:
        retry = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        return Answer(fault.status, ArmError(fault.status, fault.error_code,
                                             f"Injected fault: HTTP {fault.status}.").body(), retry)

    def topic_answer(self, method: str, headers: dict[str, str], body: Any) -> Answer:
        """An Event Grid custom topic: accepts a CloudEvents batch and keeps it."""
        if method != "POST" or not isinstance(body, list):
            return Answer(400, {"error": {"code": "BadRequest", "message": "expected a JSON array of CloudEvents"}})
        if not all(isinstance(e, dict) and e.get("specversion") == "1.0" and e.get("id") and e.get("source")
                   and e.get("type") for e in body):
            return Answer(400, {"error": {"code": "BadRequest", "message": "every event needs specversion 1.0, id, "
                                                                             "source and type"}})
        self.notifications.extend(body)
        return Answer(200)

    def logs_answer(self, method: str, path: str, body: Any) -> tuple[int, dict]:
        segments = path.strip("/").split("/")
        if method != "POST" or len(segments) != 4 or segments[3].lower() != "query":
            return 404, {"error": {"code": "PathNotFoundError", "message": f"The requested path does not exist: {path}"}}
        return self.logs.query(body if isinstance(body, dict) else {}, now=self.clock())

    def capture(self, exchange: Exchange) -> None:
        # ARM's polling and the notification topic are outside the specs oav checks: polling
        # is kept apart (`polls`), so tests can see the long-running operations' lifecycle.
        if POLLING_PATH.search(urlsplit(exchange.url).path):
            with self._traffic_lock:
                self.polls.append(exchange)
            return
        if urlsplit(exchange.url).path.lower() == TOPIC_PATH:
            return
        with self._traffic_lock:
            self.traffic.append(exchange)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: LocalAzure

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.connections: set[socket.socket] = set()

    def process_request(self, request, client_address) -> None:
        self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End the clients' keep-alive connections, so no handler thread outlives the server."""
        for connection in list(self.connections):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address) -> None:
        # A client that hangs up mid-call (a test's dropped connection, a timeout) is normal.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: with Nagle's algorithm on, the body waits
    # for the client's delayed ACK (about 40 ms a call).
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args) -> None:  # quiet: tests read state, not logs
        pass

    def do_GET(self) -> None:
        self._serve()

    do_PUT = do_PATCH = do_POST = do_DELETE = do_GET

    def _serve(self) -> None:
        emulator = self.server.emulator
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            answer = Answer(400, ArmError(400, "InvalidRequestContent",
                                          "The request content was invalid and could not be deserialized.").body())
            body = raw.decode("utf-8", "replace")
        else:
            answer = emulator.answer(self.command, self.path, headers, body, self.client_address[0])
        if answer is None:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        base = emulator.endpoint
        response_headers = {name: value.replace("{base}", base) for name, value in answer.headers.items()}
        response_headers["x-ms-request-id"] = str(uuid.uuid4())
        payload = b""
        if answer.body is not None:
            payload = json.dumps(answer.body).encode()
            response_headers["Content-Type"] = "application/json; charset=utf-8"
        # Captured before answering, so a caller that has its answer finds it in the traffic.
        emulator.capture(Exchange(
            method=self.command, url=base + self.path, request_headers=headers, request_body=body,
            status=answer.status, response_headers=response_headers, response_body=answer.body,
        ))
        self.send_response(answer.status)
        for name, value in response_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
