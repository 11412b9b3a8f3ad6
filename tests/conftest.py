"""Fixtures: the local Azure emulator and Azurite on free loopback ports, started by the
tests themselves and stopped afterwards; the shared reference material."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from localazure.shared import SharedMaterialMissing, shared_dir


@pytest.fixture(scope="session")
def shared() -> Path:
    """../shared: skipped with the reason where it is absent (a user's clone), but in CI
    (CI set) its absence fails the run, so a green CI never hides a skipped check."""
    try:
        return shared_dir()
    except SharedMaterialMissing as missing:
        if os.environ.get("CI"):
            pytest.fail(str(missing))
        pytest.skip(str(missing))


@pytest.fixture(scope="session")
def local_azure():
    from localazure.server import LocalAzure

    with LocalAzure() as azure:
        yield azure


@pytest.fixture
def emulator(local_azure):
    """The session's emulator, emptied before each test."""
    from containment.adapters import arm_limits

    local_azure.reset()
    arm_limits.LIMITS.forget()  # its buckets are new: what ARM said of the old ones is moot
    yield local_azure
    local_azure.faults.clear()


@pytest.fixture(scope="session")
def azurite():
    from localazure.azurite import Azurite

    with Azurite() as running:
        yield running


@pytest.fixture
def clients(emulator):
    from containment.adapters.clients import AzureClients
    from tests.helpers.settings import load_settings

    return AzureClients(load_settings(emulator.settings()))


class OwnerCredential:
    """A test's operator, who may do everything on the emulator (localazure/authorization.py),
    to arrange state beyond what the app's own role allows."""

    def get_token(self, *scopes, **kwargs):
        import time

        from azure.core.credentials import AccessToken

        from localazure.authorization import OWNER_TOKEN

        return AccessToken(OWNER_TOKEN, int(time.time()) + 3600)


@pytest.fixture
def owner(emulator):
    """Management clients of an Owner: `owner.storage(subscription)`, `.network(...)`, `.authorization(...)`;
    `owner.subscriptions` carries containment.adapters.arm.rest for the types no SDK here covers."""
    from types import SimpleNamespace

    from azure.mgmt.authorization import AuthorizationManagementClient
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.resource.subscriptions import SubscriptionClient
    from azure.mgmt.storage import StorageManagementClient

    options = {"base_url": emulator.endpoint, "connection_verify": str(emulator.ca_bundle), "polling_interval": 0}
    return SimpleNamespace(
        storage=lambda subscription: StorageManagementClient(OwnerCredential(), subscription, **options),
        network=lambda subscription: NetworkManagementClient(OwnerCredential(), subscription, **options),
        authorization=lambda subscription: AuthorizationManagementClient(OwnerCredential(), subscription, **options),
        subscriptions=SubscriptionClient(OwnerCredential(), **options))


class AppUnderTest:
    """The Function App as the host runs it, wired to the emulator and Azurite, with its
    own ledger table and queue so that every test starts from nothing."""

    def __init__(self, emulator, azurite, monkeypatch, name: str):
        self.emulator, self.azurite, self.monkeypatch = emulator, azurite, monkeypatch
        # Unique per test: two tests whose names end alike (test_dry_run_changes_nothing in two
        # files) must never share a table, as id() reuses a freed object's address.
        suffix = "".join(ch for ch in name.lower() if ch.isalnum())[-20:] + uuid.uuid4().hex[:8]
        self.base = {
            **emulator.settings(),
            "AzureWebJobsStorage": azurite.connection_string,
            "CONTAINMENT_LEDGER_TABLE": "t" + suffix,
            "CONTAINMENT_QUEUE": "q" + suffix,
            "CONTAINMENT_EVIDENCE_CONTAINER": "e" + suffix,
            "CONTAINMENT_LEDGER_CHAIN_TABLE": "c" + suffix,
            "CONTAINMENT_LEDGER_DIGEST_CONTAINER": "d" + suffix,
        }
        self.configure()

    def configure(self, **settings: str) -> None:
        from containment.adapters import runtime
        from containment.core.settings import SETTINGS

        for setting in SETTINGS:
            self.monkeypatch.delenv(setting.name, raising=False)
        for name, value in {**self.base, **settings}.items():
            self.monkeypatch.setenv(name, value)
        runtime.reset()

    @property
    def runtime(self):
        from containment.adapters import runtime

        return runtime.current()

    def deliver(self, event: dict):
        import function_app
        from localazure.functions_host import deliver_event

        return deliver_event(function_app.app, event)

    def drain(self):
        import function_app
        from localazure.functions_host import drain_queue

        return drain_queue(function_app.app, "contain", self.runtime.queue, self.runtime.max_attempts)

    def fire_at(self, timer: str, at):
        """Invoke a timer-triggered function with the app's clock at `at`, then run the
        containment queue, as the host would; the timer's invocation (its error, if any)."""
        import function_app
        from containment.core import clock
        from localazure.functions_host import fire_timer

        clock.set_source(lambda: at)
        try:
            invocation = fire_timer(function_app.app, timer)
            self.drain()
        finally:
            clock.set_source(None)
        return invocation

    def records(self):
        return self.runtime.ledger.decisions()

    def writes(self) -> list:
        return [x for x in self.emulator.traffic if x.method in ("PATCH", "PUT", "DELETE", "POST")]


@pytest.fixture
def moment():
    """Set the app's clock (containment.core.clock) to a moment; put back afterwards."""
    from containment.core import clock

    yield lambda when: clock.set_source(lambda: when)
    clock.set_source(None)


@pytest.fixture
def app(emulator, azurite, monkeypatch, request):
    from containment.adapters import runtime

    yield AppUnderTest(emulator, azurite, monkeypatch, request.node.name)
    runtime.reset()


# -- the proof-under-load figures: what the reliability and hostile-input tests record ------------
_FIGURES: dict[str, int] = {}


def pytest_runtest_logreport(report) -> None:
    if report.when == "call":
        for name, value in report.user_properties:
            if isinstance(value, int):
                _FIGURES[name] = _FIGURES.get(name, 0) + value


def pytest_terminal_summary(terminalreporter) -> None:
    """The counts the README quotes, summed over the tests that ran (record_property)."""
    if _FIGURES:
        terminalreporter.write_sep("-", "reliability and hostile input: what was tried")
        terminalreporter.write_line(", ".join(f"{name.replace('_', ' ')}: {value:,}" for name, value in
                                              sorted(_FIGURES.items())))
