"""Parsing ARM events: Microsoft's own samples through the Functions host's real converter,
the caller's claims, and every way an event is refused (the reason names the field)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import azure.functions as func
import pytest
from azure.functions.eventgrid import EventGridEventInConverter

from containment.core.events import (ACTION_SUCCESS, MAX_ID_LENGTH, WRITE_SUCCESS, Actor, EventSubscription,
                                     MalformedEvent, parse_event)

SUB = "0b1f6471-1bf0-4dda-aec3-111122223333"
OTHER_SUB = "9f2c3a10-5b6d-4e7f-8a9b-444455556666"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OID = "8c9d0e1f-2a3b-4c5d-8e6f-7a8b9c0d1e2f"
APPID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
ACCOUNT = f"/subscriptions/{SUB}/resourceGroups/rg-synthetic/providers/Microsoft.Storage/storageAccounts/synthtrain01"

# Microsoft's placeholders, most specific first: `{ID}` stands for several different claims.
PLACEHOLDERS = [
    ('"appid": "{ID}"', f'"appid": "{APPID}"'),
    ('"http://schemas.microsoft.com/identity/claims/objectidentifier": "{ID}"',
     f'"http://schemas.microsoft.com/identity/claims/objectidentifier": "{OID}"'),
    ("{subscription-id}", SUB),
    ("{resource-group}", "rg-synthetic"),
    ("{storage-name}", "synthtrain01"),
    ("{tenant-id}", TENANT),
    ("{full-name}", "Dana Analyst"),
    ("{user-name}", "dana@contoso.example"),
]


def sample(shared, name: str) -> str:
    """One event of a sample as JSON text, placeholders substituted (array samples: the
    host invokes the function once per element)."""
    text = (shared / "event-samples" / name).read_text()
    for placeholder, value in PLACEHOLDERS:
        text = text.replace(placeholder, value)
    body = json.loads(text)
    return json.dumps(body[0] if isinstance(body, list) else body)


def decode(event_json: str):
    """What the Python worker hands the function for an eventGridTrigger binding."""
    return EventGridEventInConverter.decode(func.meta.Datum(event_json, "json"), trigger_metadata={})


def event(**changes) -> dict:
    """A small valid Event Grid event; `data` keys given as data_<name> (None removes one)."""
    body = {
        "id": "4db48cba-50a2-455a-93b4-de41a3b5b7f6",
        "topic": f"/subscriptions/{SUB}",
        "subject": ACCOUNT.replace("/resourceGroups/", "/resourcegroups/"),
        "eventType": WRITE_SUCCESS,
        "eventTime": "2026-11-24T10:00:00.1234567Z",
        "dataVersion": "2",
        "metadataVersion": "1",
        "data": {
            "claims": {"http://schemas.microsoft.com/identity/claims/objectidentifier": OID, "appid": APPID,
                       "name": "Dana Analyst"},
            "resourceUri": ACCOUNT.replace("/resourceGroups/", "/resourcegroups/"),
            "operationName": "Microsoft.Storage/storageAccounts/write",
            "status": "Succeeded",
            "subscriptionId": SUB,
            "tenantId": TENANT,
        },
    }
    for key, value in changes.items():
        target, key = (body["data"], key[5:]) if key.startswith("data_") else (body, key)
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    return body


def parse(body: dict):
    return parse_event(decode(json.dumps(body)))


def cut(value: str) -> str:
    return repr(value)[:117] + "..."


def refusal(body: dict) -> MalformedEvent:
    with pytest.raises(MalformedEvent) as raised:
        parse(body)
    return raised.value


# --- Microsoft's samples ----------------------------------------------------------------------

def test_the_subscription_topic_write_sample_parses(shared):
    parsed = parse_event(decode(sample(shared, "resource-write-success.subscription-topic.eventgrid.json")))

    assert parsed.id == "4db48cba-50a2-455a-93b4-de41a3b5b7f6"
    assert parsed.type == WRITE_SUCCESS
    assert parsed.operation == "Microsoft.Storage/storageAccounts/write"
    assert parsed.resource.key == ACCOUNT.lower()  # the sample spells 'resourcegroups'
    assert parsed.resource.text.startswith(f"/subscriptions/{SUB}/resourcegroups/rg-synthetic/")
    assert parsed.time == datetime(2018, 7, 19, 18, 38, 4, 611735, tzinfo=timezone.utc)
    assert parsed.actor == Actor(object_id=OID, app_id=APPID, name="Dana Analyst")


def test_the_cloudevent_write_sample_parses_to_the_same_event(shared):
    decoded = decode(sample(shared, "resource-write-success.cloudevent.json"))
    assert isinstance(decoded, func.CloudEvent)

    parsed = parse_event(decoded)
    from_event_grid = parse_event(decode(sample(shared, "resource-write-success.subscription-topic.eventgrid.json")))
    assert parsed == from_event_grid


def test_the_delete_sample_is_refused_naming_its_event_type(shared):
    error = refusal(json.loads(sample(shared, "resource-delete-success.eventgrid.json")))
    assert error.reason == ("eventType 'Microsoft.Resources.ResourceDeleteSuccess' is not "
                            "Microsoft.Resources.ResourceWriteSuccess")
    assert error.event_id == "19a69642-1aad-4a96-a5ab-8d05494513ce"


def test_the_action_sample_parses_for_a_function_subscribed_to_actions(shared):
    """Microsoft's ResourceActionSuccess sample (an Event Hubs listKeys): who from the claims,
    their principal type and the role that let them from authorization.evidence, and the
    address from httpRequest. `{ID}` stands for every other ID: one GUID here."""
    text = sample(shared, "resource-action-success.eventgrid.json").replace("{namespace}", "ns1").replace(
        "{IP-address}", "198.51.100.23").replace("{ID}", OID)

    parsed = parse_event(decode(text), (ACTION_SUCCESS,))

    assert parsed.type == ACTION_SUCCESS
    assert parsed.operation == "Microsoft.EventHub/namespaces/AuthorizationRules/listKeys/action"
    assert parsed.resource.name == "RootManageSharedAccessKey"
    assert parsed.actor == Actor(object_id=OID, app_id=APPID, principal_type="ServicePrincipal")
    assert parsed.client_address == "198.51.100.23"
    assert parsed.authorization == {"role": "Contributor", "roleAssignmentScope": f"/subscriptions/{SUB}",
                                    "roleAssignmentId": OID, "roleDefinitionId": OID}


def test_an_event_type_the_functions_subscription_does_not_admit_is_refused(shared):
    """A write function is never handed an action (nor an action function a write) to judge
    as its own kind: the event is refused, naming the types the function accepts."""
    action = sample(shared, "resource-action-success.eventgrid.json").replace("{namespace}", "ns1").replace(
        "{ID}", OID)
    with pytest.raises(MalformedEvent) as raised:
        parse_event(decode(action))
    assert raised.value.reason == ("eventType 'Microsoft.Resources.ResourceActionSuccess' is not "
                                   "Microsoft.Resources.ResourceWriteSuccess")
    write = sample(shared, "resource-write-success.subscription-topic.eventgrid.json")
    with pytest.raises(MalformedEvent) as raised:
        parse_event(decode(write), (ACTION_SUCCESS,))
    assert raised.value.reason == ("eventType 'Microsoft.Resources.ResourceWriteSuccess' is not "
                                   "Microsoft.Resources.ResourceActionSuccess")


def test_a_subscription_admits_its_types_and_operations_without_case():
    subscription = EventSubscription((ACTION_SUCCESS,), ("Microsoft.Storage/storageAccounts/listKeys/action",))
    assert subscription.admits(ACTION_SUCCESS.upper(), "microsoft.storage/storageaccounts/listkeys/action")
    assert not subscription.admits(WRITE_SUCCESS, "Microsoft.Storage/storageAccounts/listKeys/action")
    assert not subscription.admits(ACTION_SUCCESS, "Microsoft.Storage/storageAccounts/regenerateKey/action")
    assert not subscription.admits(None, None)


def test_a_cloudevent_with_the_upstream_specVersion_typo_is_refused_not_misread(shared):
    # The delete CloudEvent sample spells "specVersion" (Microsoft's bug, kept verbatim). With no
    # lower-case "specversion" the worker's converter builds an *Event Grid* event from it, which
    # has no "eventType": so even a write event with the typo is refused, never judged.
    delete = decode(sample(shared, "resource-delete-success.cloudevent.json"))
    assert not isinstance(delete, func.CloudEvent)
    assert (delete.event_type, delete.event_time) == (None, None)

    write = json.loads(sample(shared, "resource-write-success.cloudevent.json"))
    write["specVersion"] = write.pop("specversion")
    with pytest.raises(MalformedEvent) as raised:
        parse_event(decode(json.dumps(write)))
    assert raised.value.reason == "eventType None is not Microsoft.Resources.ResourceWriteSuccess"
    assert raised.value.event_id == "4db48cba-50a2-455a-93b4-de41a3b5b7f6"


# --- the actor --------------------------------------------------------------------------------

def test_the_actor_comes_from_the_claims():
    assert parse(event()).actor.as_dict() == {"object_id": OID, "app_id": APPID, "name": "Dana Analyst"}


def test_short_claim_names_and_the_upn_are_used_when_the_long_ones_are_absent():
    claims = {"oid": OID, "azp": APPID, "upn": "dana@contoso.example"}
    assert parse(event(data_claims=claims)).actor == Actor(OID, APPID, "dana@contoso.example")


def test_the_role_assignment_principal_stands_in_for_a_missing_object_id_claim():
    authorization = {"evidence": {"role": "Contributor", "principalId": OID, "principalType": "ServicePrincipal"}}
    actor = parse(event(data_claims={"appid": APPID}, data_authorization=authorization)).actor
    assert (actor.object_id, actor.app_id, actor.name) == (OID, APPID, None)


@pytest.mark.parametrize("claims", [None, "not an object", ["a"], {"name": "   ", "appid": 7}])
def test_missing_or_unusable_claims_give_an_empty_actor_not_an_error(claims):
    actor = parse(event(data_claims=claims)).actor  # None: no claims at all
    assert actor == Actor() and actor.as_dict() == {}


def test_a_very_long_claim_is_cut_to_256_characters():
    assert parse(event(data_claims={"name": "x" * 5000})).actor.name == "x" * 256


# --- refusals, each naming the field ----------------------------------------------------------

def test_data_that_is_not_an_object_is_refused():
    assert refusal(event(data=["not", "an", "object"])).reason == "data must be a JSON object, got list"


@pytest.mark.parametrize("operation, shown", [(None, "None"), ("", "''"), (42, "42")])
def test_a_missing_or_empty_operation_name_is_refused(operation, shown):
    body = event()
    body["data"]["operationName"] = operation
    assert refusal(body).reason == f"data.operationName must be a string, got {shown}"


def test_a_subject_and_resource_uri_naming_different_resources_are_refused():
    other = ACCOUNT.replace("synthtrain01", "synthtrain02")
    error = refusal(event(data_resourceUri=other))
    # Each value is shown cut to 120 characters, so for real ARM IDs the differing tail is not shown.
    assert error.reason == (f"subject {cut(event()['subject'])} and data.resourceUri {cut(other)} name different "
                            "resources")
    assert error.event_id == "4db48cba-50a2-455a-93b4-de41a3b5b7f6"


def test_a_subject_and_resource_uri_differing_only_in_case_agree():
    assert parse(event(subject=ACCOUNT.upper().replace("/SUBSCRIPTIONS/", "/subscriptions/")
                       .replace("/RESOURCEGROUPS/", "/resourceGroups/"))).resource.key == ACCOUNT.lower()


def test_without_a_resource_uri_the_subject_is_judged():
    assert parse(event(data_resourceUri=None)).resource.key == ACCOUNT.lower()


def test_a_malformed_resource_uri_is_refused_naming_the_field():
    error = refusal(event(data_resourceUri=ACCOUNT + "/../../x"))
    assert error.reason.startswith("data.resourceUri/subject: ")
    assert "is not a well-formed ARM resource ID" in error.reason


def test_a_subscription_id_that_is_not_the_resources_subscription_is_refused():
    error = refusal(event(data_subscriptionId=OTHER_SUB))
    assert error.reason == f"data.subscriptionId {OTHER_SUB!r} is not the resource's subscription {SUB}"


def test_the_subscription_id_compares_case_insensitively():
    assert parse(event(data_subscriptionId=SUB.upper())).resource.subscription == SUB


@pytest.mark.parametrize("event_id, shown", [
    pytest.param(None, "None", id="missing"),
    pytest.param("", "''", id="empty"),
    pytest.param("   ", "'   '", id="blank"),
    pytest.param(12345, "12345", id="number"),
])
def test_a_missing_or_unusable_id_is_refused(event_id, shown):
    error = refusal(event(id=event_id))  # None: no id at all
    assert error.reason == f"event id must be a non-empty string of at most {MAX_ID_LENGTH} characters, got {shown}"
    assert error.event_id is None


def test_an_id_longer_than_256_characters_is_refused_and_not_carried_on():
    error = refusal(event(id="e" * (MAX_ID_LENGTH + 1)))
    assert error.reason.startswith(f"event id must be a non-empty string of at most {MAX_ID_LENGTH} characters")
    assert error.reason.endswith("...")  # the value is shown cut short
    assert error.event_id is None


def test_an_id_of_exactly_256_characters_is_accepted():
    assert parse(event(id="e" * MAX_ID_LENGTH)).id == "e" * MAX_ID_LENGTH


def test_a_naive_event_time_is_taken_as_utc():
    assert parse(event(eventTime="2026-11-24T10:00:00")).time == datetime(2026, 11, 24, 10, tzinfo=timezone.utc)


@pytest.mark.parametrize("event_id", ["egress-20261124T1145-0123456789abcdef0123", "sweep-20261124-abc",
                                      "message-123", "SHA256-abc", "Refused-" + "0" * 64])
def test_an_event_id_on_an_internal_key_namespace_is_keyed_apart(event_id):
    """An internal key (an egress window, the sweep, a rejected message, a refused operator
    request) is the app's: an event the sender named the same must not pre-empt that decision."""
    from containment.core.records import decision_key

    assert decision_key(event_id) != event_id and decision_key(event_id).startswith("sha256-")
    assert decision_key("9a1e0c52-7f3d-4b6e-9d41-2c8f1a0b3e01") == "9a1e0c52-7f3d-4b6e-9d41-2c8f1a0b3e01"
