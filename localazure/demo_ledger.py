"""The demo ledger: what a replay recorded, kept on disk so that the command line can read it
after the replay has exited (`replay --demo-ledger`, which `make demo` runs: `.demo/`).

Azurite keeps its data in .demo/azurite. Each scenario's app has tables, containers and a queue
of its own there (localazure.replay numbers them), so each scenario still runs on fresh state
(SCENARIOS.md) and every scenario's records are kept whole. One set of tables for all would
not do: the bundled scenarios replay the same resources and events on the same day in
different modes (dry-run and enforce, contained and then released), so their decision keys
would collide (the ledger would keep the first as if the second were a redelivery) and their
incidents would merge into breaches that never happened.

.demo/ledgers.json lists the scenarios' ledgers in the order replayed: the file, the settings the
app ran with (its storage names among them) and the days its decisions fall on. With no
storage setting, `python -m containment export`, `incident-report`, `verify` and `exemptions`
read the demo ledger in `.demo/` of the working directory through `open_ledgers` (the
`demo-ledger` entry point of `containment.commands`).
"""
from __future__ import annotations

import fcntl
import json
import shutil
import sys
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from localazure.azurite import Azurite

DEMO_DIR = Path(".demo")
MANIFEST = "ledgers.json"
# What a demo ledger's folder holds: Azurite's data, the list of ledgers, the lock.
OWN = {"azurite", MANIFEST, ".lock"}


@dataclass(frozen=True)
class ScenarioLedger:
    scenario: str  # the file's name without .json: what `--scenario` names
    file: str
    name: str
    settings: dict[str, str]
    first_day: str | None  # YYYY-MM-DD of its first and last decisions (None: it decided nothing)
    last_day: str | None


class DemoLedger:
    def __init__(self, directory: Path):
        self.directory = directory
        self.manifest = directory / MANIFEST

    def exists(self) -> bool:
        return self.manifest.is_file()

    def ledgers(self) -> list[ScenarioLedger]:
        return [ScenarioLedger(**entry) for entry in json.loads(self.manifest.read_text())]

    def add(self, ledger: ScenarioLedger) -> None:
        self.manifest.write_text(json.dumps([asdict(e) for e in [*self.ledgers(), ledger]], indent=2) + "\n")

    @contextmanager
    def storage(self, fresh: bool = False) -> Iterator[Azurite]:
        """Azurite on the demo ledger's data, for one process at a time: two Azurites on one
        folder would each save their own copy over the other's. `fresh` starts the demo ledger
        again, empty."""
        strangers = sorted(p.name for p in self.directory.iterdir() if p.name not in OWN) \
            if self.directory.exists() else []
        if fresh and strangers:  # starting afresh removes what it made, and nothing else
            raise FileExistsError(f"{self.directory} holds what a demo ledger does not ({', '.join(strangers)}): "
                                  "name a new or empty folder")
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"waiting for the demo ledger in {self.directory}: another process is using it",
                      file=sys.stderr, flush=True)
                fcntl.flock(lock, fcntl.LOCK_EX)
            if fresh:
                shutil.rmtree(self.directory / "azurite", ignore_errors=True)
                self.manifest.write_text("[]\n")
            with Azurite(self.directory / "azurite") as azurite:
                yield azurite


@dataclass(frozen=True)
class OpenLedgers:
    """What the command line reads: each scenario's settings, by scenario, and the days the
    demo's decisions span (its default time range)."""

    directory: Path
    scenarios: dict[str, dict[str, str]]
    since: datetime
    until: datetime


@contextmanager
def open_ledgers(environ) -> Iterator[OpenLedgers | None]:
    """The demo ledger in `.demo/` of the working directory, served by Azurite, with
    `AzureWebJobsStorage` in `environ` pointing at it while open; None where there is none."""
    demo = DemoLedger(DEMO_DIR)
    if not demo.exists():
        yield None
        return
    with demo.storage() as azurite:
        ledgers = demo.ledgers()
        days = [day for e in ledgers for day in (e.first_day, e.last_day) if day]
        first = datetime.fromisoformat(min(days, default="1970-01-01")).replace(tzinfo=timezone.utc)
        last = datetime.fromisoformat(max(days, default="1970-01-01")).replace(tzinfo=timezone.utc)
        print(f"no storage setting (AzureWebJobsStorage): reading the demo ledger in {demo.directory.resolve()} "
              f"({len(ledgers)} scenarios, decided {first:%Y-%m-%d} to {last:%Y-%m-%d}); `make demo-clean` "
              "removes it", file=sys.stderr, flush=True)
        environ["AzureWebJobsStorage"] = azurite.connection_string
        try:
            yield OpenLedgers(demo.directory, {e.scenario: e.settings for e in ledgers}, first,
                              last + timedelta(days=1))
        finally:
            del environ["AzureWebJobsStorage"]
