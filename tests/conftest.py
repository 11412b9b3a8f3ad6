"""Fixtures: the local Azure emulator and Azurite on free loopback ports, started by the
tests themselves and stopped afterwards; the shared reference material."""
from __future__ import annotations

import os
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
    local_azure.reset()
    yield local_azure
    local_azure.faults.clear()


@pytest.fixture(scope="session")
def azurite():
    from localazure.azurite import Azurite

    with Azurite() as running:
        yield running


@pytest.fixture
def clients(emulator):
    from containment.azure import AzureClients
    from containment.settings import load_settings

    return AzureClients(load_settings(emulator.settings()))
