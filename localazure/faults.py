"""Fault injection for the emulator: what Azure does on its bad days, on demand.

A fault matches calls by method and a regular expression on the path (and, optionally, on
the request body: one Log Analytics query among the several a scan sends); it lets `skip`
matching calls through, then fires on the next `times` of them (None: for ever). The
reliability tests drive ARM throttling, server errors, dropped connections, slow answers,
concurrent writers and Log Analytics partial results through it. A fault `after` the call
fires once the call has been carried out: ARM made the change, and the caller sees an
error or a dropped connection (a gateway timeout, a connection lost on the way back).
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

KINDS = ("status", "drop", "slow", "etag-conflict", "partial-error")

_ERROR_CODES = {
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


@dataclass
class Fault:
    kind: str
    path: str = ""
    method: str | None = None
    body: str = ""  # a regular expression the request body (as text) must contain
    status: int = 500
    retry_after: int | None = None
    delay: float = 0.0
    skip: int = 0
    times: int | None = 1
    after: bool = False
    seen: int = 0
    fired: int = 0
    _pattern: re.Pattern = field(init=False, repr=False)
    _body: re.Pattern | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"fault kind {self.kind!r} is not one of {KINDS}")
        if self.after and self.kind not in ("status", "drop"):
            raise ValueError(f"a {self.kind} fault cannot come after the call: only status and drop can")
        self._pattern = re.compile(self.path, re.IGNORECASE)
        self._body = re.compile(self.body) if self.body else None

    def matches(self, method: str, path: str, body: str = "") -> bool:
        return ((self.method is None or self.method.upper() == method) and bool(self._pattern.search(path))
                and (self._body is None or bool(self._body.search(body))))

    @property
    def error_code(self) -> str:
        return _ERROR_CODES.get(self.status, "InternalServerError")


class FaultPlan:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, kind: str, path: str = "", **options) -> Fault:
        fault = Fault(kind=kind, path=path, **options)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str, after: bool = False, body: str = "") -> list[Fault]:
        """The faults that fire on this call before (or `after`) it is carried out, counting
        it against every matching fault of that phase."""
        firing = []
        with self._lock:
            for fault in self._faults:
                if fault.after != after or not fault.matches(method, path, body):
                    continue
                fault.seen += 1
                exhausted = fault.times is not None and fault.fired >= fault.times
                if fault.seen > fault.skip and not exhausted:
                    fault.fired += 1
                    firing.append(fault)
        return firing
