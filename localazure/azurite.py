"""Azurite (Microsoft's storage emulator, from npm) on free loopback ports, in memory or,
given a location, keeping its data in that folder (the demo ledger, localazure.demo_ledger).

The app keeps its decision ledger (tables) and its containment queue in the storage
account behind `AzureWebJobsStorage`; locally that is this Azurite.
"""
from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from localazure.shared import REPO_ROOT

ACCOUNT = "devstoreaccount1"
# Azurite's published development key (not a secret: it is in Microsoft's documentation).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Azurite:
    def __init__(self, location: Path | None = None) -> None:
        self.location = location
        self.process: subprocess.Popen | None = None
        self.ports: dict[str, int] = {}

    def start(self, timeout: float = 30.0) -> "Azurite":
        # Free ports can be taken between the probe and Azurite's bind: try a few times.
        for _ in range(3):
            if self._launch({service: _free_port() for service in ("blob", "queue", "table")}, timeout):
                return self
            self.stop()
        raise RuntimeError("Azurite did not start on loopback")

    def restart(self, timeout: float = 30.0) -> None:
        """Stop and start again on the same ports; in memory, losing every table and message,
        as a storage outage looks to the app."""
        ports = self.ports
        self.stop()
        if not self._launch(ports, timeout):
            raise RuntimeError("Azurite did not come back on its ports")

    def _launch(self, ports: dict[str, int], timeout: float) -> bool:
        binary = REPO_ROOT / "node_modules" / ".bin" / "azurite"
        if not binary.exists():
            raise RuntimeError(f"{binary} is missing: run 'npm ci' (the Makefile's setup does)")
        self.ports = ports
        # In memory: nothing written to disk, and a restart loses everything, like an outage.
        # Telemetry off: it would report to Microsoft and keep a file in the location.
        keep = ["--location", str(self.location)] if self.location else ["--inMemoryPersistence"]
        command = [str(binary), "--silent", *keep, "--disableTelemetry", "--skipApiVersionCheck", "--loose"]
        for service, port in ports.items():
            command += [f"--{service}Host", "127.0.0.1", f"--{service}Port", str(port)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                for port in ports.values():
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return True
            except OSError:
                time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # Azurite waits for open keep-alive connections on SIGTERM; in memory it has
            # nothing to flush, so a short grace period is enough. On disk it saves its tables
            # first (TableServer.afterClose), which must not be cut short.
            self.process.terminate()
            try:
                self.process.wait(timeout=30 if self.location else 1)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> "Azurite":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.ports['blob']}/{ACCOUNT};"
            f"QueueEndpoint=http://127.0.0.1:{self.ports['queue']}/{ACCOUNT};"
            f"TableEndpoint=http://127.0.0.1:{self.ports['table']}/{ACCOUNT};"
        )
