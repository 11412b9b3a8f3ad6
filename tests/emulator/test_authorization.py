"""The app's identity holds exactly the custom roles infra/ declares, on the emulator as in
Azure: what the role lists succeeds, anything else is ARM's 403 AuthorizationFailed."""
from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from containment.adapters.clients import LocalAzureCredential
from localazure.authorization import APP_TOKEN, app_role_actions
from tests.helpers import arm_bodies as b
from tests.helpers.principals import principal_clients

ACCOUNT = b.storage_account()


def test_the_apps_local_token_is_the_one_the_emulator_holds_to_the_role():
    assert LocalAzureCredential().get_token("https://management.azure.com/.default").token == APP_TOKEN


def test_the_role_is_read_from_the_bicep_the_deployment_uses():
    from containment.deployment import required_permissions

    assert {a.lower() for a in app_role_actions()} == {p.lower() for p in required_permissions()}


def test_an_operation_the_role_does_not_list_is_refused_403(emulator, clients, owner):
    emulator.seed([ACCOUNT])
    with pytest.raises(HttpResponseError) as refused:
        clients.storage(b.SUBSCRIPTION).storage_accounts.list_keys(b.RG, ACCOUNT["name"])
    assert (refused.value.status_code, refused.value.error.code) == (403, "AuthorizationFailed")
    assert "Microsoft.Storage/storageAccounts/listKeys/action" in refused.value.error.message
    assert ACCOUNT["id"] in refused.value.error.message  # over the account's scope
    # An Owner may: it is the role that refuses, not the emulator.
    assert owner.storage(b.SUBSCRIPTION).storage_accounts.list_keys(b.RG, ACCOUNT["name"]).keys_property


def test_a_whole_nsg_write_is_refused_to_the_app_which_writes_rules(emulator, clients):
    from azure.mgmt.network.models import NetworkSecurityGroup

    with pytest.raises(HttpResponseError) as refused:
        clients.network(b.SUBSCRIPTION).network_security_groups.begin_create_or_update(
            b.RG, "nsg-new", NetworkSecurityGroup(location="westeurope")).result()
    assert (refused.value.status_code, refused.value.error.code) == (403, "AuthorizationFailed")


def test_an_unknown_token_may_do_nothing(emulator):
    from azure.core.credentials import AccessToken
    from azure.mgmt.storage import StorageManagementClient

    class Stranger:
        def get_token(self, *scopes, **kwargs):
            return AccessToken("someone-else", 4102444800)

    emulator.seed([ACCOUNT])
    stranger = StorageManagementClient(Stranger(), b.SUBSCRIPTION, base_url=emulator.endpoint,
                                       connection_verify=str(emulator.ca_bundle))
    with pytest.raises(HttpResponseError) as refused:
        stranger.storage_accounts.get_properties(b.RG, ACCOUNT["name"])
    assert refused.value.status_code == 403


def test_a_containment_write_the_role_would_refuse_ends_failed_with_arms_code(app, emulator):
    """Held to a role without containers/write, the app's containment is refused by ARM and
    recorded failed with AuthorizationFailed, at once, never `contained`."""
    from dataclasses import replace

    from localazure.authorization import APP_TOKEN

    public = b.container(ACCOUNT["id"], "training", "Container")
    emulator.seed([ACCOUNT, public])
    app_principal = emulator.arm.principals[APP_TOKEN]
    emulator.arm.principals[APP_TOKEN] = replace(app_principal, actions=tuple(
        a for a in app_principal.actions if a != "Microsoft.Storage/storageAccounts/blobServices/containers/write"))
    app.configure(CONTAINMENT_MODE="enforce")
    from tests.helpers.events import CONTAINER_WRITE, write_event

    app.deliver(write_event(public["id"], CONTAINER_WRITE))
    app.drain()
    [record] = app.records()
    assert record.outcome == "failed" and "403 AuthorizationFailed" in record.reason
    assert emulator.arm.get(public["id"])["properties"]["publicAccess"] == "Container"
    assert len([w for w in app.writes() if w.method == "PATCH"]) == 1  # refused once, not retried


def test_anyone_else_holds_what_the_scenarios_role_assignments_give_them_at_a_scope(emulator):
    """Storage Account Contributor on one account: that account, nothing beside it."""
    engineer = "3a4b5c6d-7e8f-4a0b-8c1d-2e3f4a5b6c7d"
    other = b.storage_account("synthother01")
    grant = b.role_assignment(ACCOUNT["id"], engineer, "17d1049b-9a84-46fb-8f53-869881c3d3ab",
                              name="0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e0a")
    emulator.seed([ACCOUNT, other, b.nsg(), grant])
    storage, network = principal_clients(emulator, engineer)
    assert storage.storage_accounts.list_keys(b.RG, ACCOUNT["name"]).keys_property  # Microsoft.Storage/storageAccounts/*
    for refused in (lambda: storage.storage_accounts.get_properties(b.RG, other["name"]),
                    lambda: network.network_security_groups.get(b.RG, "nsg-synthetic-data")):
        with pytest.raises(HttpResponseError) as answer:
            refused()
        assert (answer.value.status_code, answer.value.error.code) == (403, "AuthorizationFailed")
