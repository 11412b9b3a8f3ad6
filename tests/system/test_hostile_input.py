"""Hostile input, hand-written and property-based (hypothesis: bounded, derandomized, no
deadline), through the function entry points against the emulator and Azurite:

- Event Grid events: malformed and oversized, wrong types in every field, ARM IDs with
  traversal or injection characters, unicode look-alikes in subscription IDs;
- app settings with bad values;
- Log Analytics answers with missing columns or wrong types (the egress scan);
- scenario files with errors (`python -m containment replay`);
- containment requests on the queue, and operator requests.

Each gets a clear rejection, none crashes a function or stops the events after it, and
nothing outside the scope is acted on (tests/test_reliability.assert_scope_safe). Where
the app falls short the test is `xfail(strict=True)` with the bug in its reason.
Each test records how many inputs it tried (`record_property("inputs_tried", n)`).
"""
from __future__ import annotations

import copy
import json
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from containment.core.records import ContainmentRequest
from tests.helpers import arm_bodies as b
from tests.helpers.events import ACCOUNT_WRITE, CONTAINER_WRITE, write_event
from tests.helpers.traps import (FOREIGN, OWN_ACCOUNT, OWN_CONTAINER, OWN_GROUP, TRAPS, UNTAGGED,
                                 assert_scope_safe, effective_writes, forged_decision)

SUB = b.SUBSCRIPTION
ACCOUNT = b.storage_account()
QUIET = b.container(ACCOUNT["id"], "eval")  # private: what a hostile event that parses ends up judging
ESTATE = [ACCOUNT, QUIET, *TRAPS]
SETTINGS = {"CONTAINMENT_MODE": "enforce", "CONTAINMENT_SUBSCRIPTIONS": SUB, "CONTAINMENT_OWN_SCOPES": OWN_GROUP,
            "CONTAINMENT_MAX_ACTIONS_PER_HOUR": "1000"}
OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
EVENT_FUNCTIONS = ("storage_exposure", "role_assignment_grant", "nsg_exposure")
# A few settings for the property tests: bounded, the same examples on every run, no
# deadline (the functions do HTTP), and fixtures shared by the examples of one test.
BOUNDED = dict(derandomize=True, deadline=None, database=None, print_blob=True,
               suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                      HealthCheck.data_too_large])

# Spellings of a subscription ID that look like ours and are not.
CYRILLIC_A = SUB.replace("a", "\u0430", 1)  # Cyrillic a
FULLWIDTH_0 = SUB.replace("0", "\uff10", 1)  # fullwidth digit zero
ZERO_WIDTH = SUB[:8] + "\u200b" + SUB[8:]  # a zero-width space inside
QUIET_ID = QUIET["id"]
HOSTILE_IDS = [
    QUIET_ID + "/../../../../../../../../subscriptions/" + b.OTHER_SUBSCRIPTION,
    f"/subscriptions/{SUB}/resourceGroups/rg-synthetic/../rg-containment/providers/Microsoft.Storage/storageAccounts/"
    "containmentapp01",
    f"/subscriptions/{SUB}/resourceGroups/./providers/Microsoft.Storage/storageAccounts/synthtrain01",
    QUIET_ID.replace("/containers/eval", "/containers/%2e%2e%2fledger-export"),
    QUIET_ID + "?api-version=2019-06-01&$filter=true",
    QUIET_ID + "#fragment",
    QUIET_ID + "\r\nX-Injected: 1",
    QUIET_ID + "\x00",
    QUIET_ID.replace("eval", "ev al"),
    QUIET_ID.replace("eval", "eval' or PartitionKey ne '"),
    QUIET_ID.replace("eval", 'eval" | take 1'),
    QUIET_ID.replace("eval", "*"),
    QUIET_ID.replace(SUB, CYRILLIC_A),
    QUIET_ID.replace(SUB, FULLWIDTH_0),
    QUIET_ID.replace(SUB, ZERO_WIDTH),
    QUIET_ID.replace("Microsoft.Storage", "Micr\u043esoft.Storage"),  # Cyrillic o
    QUIET_ID.replace("eval", "eval\u202e"),  # right-to-left override
    "/" + QUIET_ID,
    QUIET_ID + "/",
    QUIET_ID.replace("/resourceGroups/", "/resourceGroups//"),
    "",
    "subscriptions/" + SUB,
    "https://management.azure.com" + QUIET_ID,
    "/subscriptions/*/resourceGroups/*/providers/Microsoft.Storage/storageAccounts/*",
    "/subscriptions/" + SUB + "/resourceGroups/rg-synthetic/providers/Microsoft.Storage/storageAccounts/x" * 40,
]
WRONG_TYPES = [None, 42, 4.2, True, [], [QUIET_ID], {}, {"id": QUIET_ID}]


# -- the estate and the app ------------------------------------------------------------------------
@pytest.fixture
def estate(app, emulator):
    emulator.seed(ESTATE)
    app.configure(**SETTINGS)
    return app


def invoke(function: str, event: dict):
    """Call an Event Grid function as the host would (the worker's own decoding), bypassing
    the subscription's filter (as if it let anything through); the error, or None."""
    import azure.functions as func
    from azure.functions.eventgrid import EventGridEventInConverter

    import function_app
    from localazure.functions_host import user_function

    try:
        decoded = EventGridEventInConverter.decode(func.meta.Datum(json.dumps(event), "json"), trigger_metadata={})
        user_function(function_app.app, function)(decoded)
    except Exception as error:  # noqa: BLE001 - the test reports it
        return error
    return None


def new_records(app, seen: set[str]) -> list:
    records = [r for r in app.records() if r.key not in seen]
    seen.update(r.key for r in records)
    return records


def quiet_event(**changes) -> dict:
    return write_event(QUIET_ID, CONTAINER_WRITE, **changes)


def with_uri(value) -> dict:
    """The quiet container's event, naming `value` instead (subject and resourceUri alike)."""
    event = quiet_event()
    event["subject"] = event["data"]["resourceUri"] = value
    return event


def mutate(change):
    def make() -> dict:
        event = quiet_event()
        change(event)
        return event
    return make


def set_path(event: dict, path: tuple, value) -> None:
    target = event
    for part in path[:-1]:
        if not isinstance(target.get(part), dict):
            return
        target = target[part]
    if value is _DELETE:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value


_DELETE = object()

# (case, event factory, expected outcome, words its reason must contain)
EVENT_CASES = [
    ("id missing", mutate(lambda e: e.pop("id")), "rejected", "event id"),
    ("id empty", mutate(lambda e: e.update(id="")), "rejected", "event id"),
    ("id blank", mutate(lambda e: e.update(id=" \t ")), "rejected", "event id"),
    ("id too long", mutate(lambda e: e.update(id="e" * 300)), "rejected", "event id"),
    *[(f"id {type(v).__name__} {v!r}", mutate(lambda e, v=v: e.update(id=v)), "rejected", "event id")
      for v in WRONG_TYPES if not isinstance(v, str) and v is not None],
    ("id with table-key characters", mutate(lambda e: e.update(id="a/b#c?d\\e\tf")), "compliant", ""),
    ("id with an OData injection", mutate(lambda e: e.update(id="x' or PartitionKey ne 'y")), "compliant", ""),
    ("eventType in other case", mutate(lambda e: e.update(eventType=e["eventType"].lower())), "rejected", "eventType"),
    ("eventType a delete", mutate(lambda e: e.update(eventType="Microsoft.Resources.ResourceDeleteSuccess")),
     "rejected", "eventType"),
    ("eventType missing", mutate(lambda e: e.pop("eventType")), "rejected", "eventType"),
    *[(f"eventType {v!r}", mutate(lambda e, v=v: e.update(eventType=v)), "rejected", "eventType")
      for v in (42, [], {"a": 1})],
    *[(f"data {v!r}", mutate(lambda e, v=v: e.update(data=v)), "rejected", "data must be a JSON object")
      for v in (None, "x", [], 42, True)],
    ("operationName missing", mutate(lambda e: e["data"].pop("operationName")), "rejected", "operationName"),
    *[(f"operationName {v!r}", mutate(lambda e, v=v: e["data"].update(operationName=v)), "rejected",
       "operationName") for v in ("", 42, [], {})],
    *[(f"resourceUri {v!r}"[:80], lambda v=v: with_uri(v), "rejected", "resourceUri") for v in HOSTILE_IDS],
    *[(f"resourceUri {v!r}", lambda v=v: with_uri(v), "rejected", "resourceUri")
      for v in WRONG_TYPES if v is not None],
    ("resourceUri null", mutate(lambda e: e["data"].update(resourceUri=None)), "rejected", "resourceUri"),
    ("resourceUri of a subscription", lambda: with_uri(f"/subscriptions/{SUB}"), "ignored", "not a storage account"),
    ("resourceUri of a virtual machine",
     lambda: with_uri(f"{b.RG_ID}/providers/Microsoft.Compute/virtualMachines/vm1"), "ignored", "not a storage"),
    ("subject names a foreign resource", mutate(lambda e: e.update(subject=FOREIGN["id"])), "rejected",
     "different resources"),
    ("subject names the app's own", mutate(lambda e: e.update(subject=OWN_CONTAINER["id"])), "rejected",
     "different resources"),
    ("no resourceUri, subject the app's own container",
     mutate(lambda e: (e["data"].pop("resourceUri"), e.update(subject=OWN_CONTAINER["id"]))), "reported",
     "CONTAINMENT_OWN_SCOPES"),
    ("the app's own container, in capitals", lambda: with_uri(OWN_CONTAINER["id"].upper()), "reported",
     "CONTAINMENT_OWN_SCOPES"),
    ("a foreign subscription", lambda: write_event(FOREIGN["id"], ACCOUNT_WRITE, subscription=b.OTHER_SUBSCRIPTION),
     "rejected", "CONTAINMENT_SUBSCRIPTIONS"),
    ("a foreign resource claiming our subscriptionId",
     lambda: write_event(FOREIGN["id"], ACCOUNT_WRITE, subscription=SUB), "rejected", "subscriptionId"),
    *[(f"subscriptionId {v!r}", mutate(lambda e, v=v: e["data"].update(subscriptionId=v)), "rejected",
       "subscriptionId") for v in (CYRILLIC_A, FULLWIDTH_0, ZERO_WIDTH, b.OTHER_SUBSCRIPTION, 42, [SUB])],
    ("topic of another subscription", mutate(lambda e: e.update(topic=f"/subscriptions/{b.OTHER_SUBSCRIPTION}")),
     "compliant", ""),
    ("claims a list", mutate(lambda e: e["data"].update(claims=[OID, "x"])), "compliant", ""),
    ("object ID a number", mutate(lambda e: e["data"]["claims"].update({OID: 42})), "compliant", ""),
    ("actor name of 100,000 characters", mutate(lambda e: e["data"]["claims"].update(name="n" * 100_000)),
     "compliant", ""),
    ("actor name with control characters",
     mutate(lambda e: e["data"]["claims"].update(name="\x00\x1b[31m\r\nadmin\u202e")), "compliant", ""),
    ("authorization a string", mutate(lambda e: e["data"].update(authorization="Owner")), "compliant", ""),
    ("evidence a list", mutate(lambda e: e["data"]["authorization"].update(evidence=["x"])), "compliant", ""),
    ("2 MiB of extra data", mutate(lambda e: e["data"].update(padding="x" * (2 << 20))), "compliant", ""),
    ("500 nested levels", mutate(lambda e: e["data"].update(nested=json.loads("[" * 500 + "]" * 500))),
     "compliant", ""),
    ("no eventTime", mutate(lambda e: e.pop("eventTime")), "compliant", ""),
    ("a CloudEvent of another type", lambda: {"specversion": "1.0", "id": "ce-1", "source": f"/subscriptions/{SUB}",
                                               "type": "Microsoft.Storage.BlobCreated", "subject": QUIET_ID,
                                               "data": quiet_event()["data"]}, "rejected", "eventType"),
    ("a CloudEvent with a traversal", lambda: {"specversion": "1.0", "id": "ce-2", "source": f"/subscriptions/{SUB}",
                                               "type": "Microsoft.Resources.ResourceWriteSuccess",
                                               "subject": HOSTILE_IDS[0],
                                               "data": {**quiet_event()["data"], "resourceUri": HOSTILE_IDS[0]}},
     "rejected", "resourceUri"),
]


def test_hostile_events_are_each_rejected_or_judged_and_the_events_after_them_are_handled(
        estate, emulator, record_property):
    """Each hostile event goes to storage_exposure, then a good event about a public
    container of its own: every hostile one ends as one record (rejected, ignored, reported
    for the app's own deployment or, for odd but valid input, compliant) naming the problem;
    every good one is contained; nothing else is written, and nothing outside the scope is
    touched."""
    app = estate
    publics = [b.container(ACCOUNT["id"], f"pub{n:03d}", "Container") for n in range(len(EVENT_CASES))]
    emulator.seed(publics)
    seen: set[str] = set()
    problems = []
    for (case, make, outcome, words), public in zip(EVENT_CASES, publics):
        error = invoke("storage_exposure", make())
        records = new_records(app, seen)
        got = [(r.outcome, r.reason) for r in records]
        if error is not None or len(records) != 1 or records[0].outcome != outcome or words not in records[0].reason:
            problems.append(f"{case}: expected one {outcome} record naming {words!r}, got {got}, error {error!r}")
        elif any(len(r.actor.get("name", "")) > 256 for r in records):
            problems.append(f"{case}: an actor name longer than 256 characters was recorded")
        good = app.deliver(write_event(public["id"], CONTAINER_WRITE))
        app.drain()
        after = [(r.resource_id, r.outcome) for r in new_records(app, seen)]
        if any(i.error for i in good) or after != [(public["id"], "contained")]:
            problems.append(f"{case}: the good event after it was not contained: {good}, {after}")
    assert problems == []
    for public in publics:
        assert emulator.arm.get(public["id"])["properties"]["publicAccess"] == "None"
    writes = effective_writes(emulator)
    assert sorted(path.lower() for _, path, _ in writes) == sorted(p["id"].lower() for p in publics)
    assert_scope_safe(emulator)
    record_property("inputs_tried", len(EVENT_CASES))


@pytest.mark.parametrize("event_time", ["yesterday", 42, {"at": "now"}, "2026-13-45T00:00:00Z"])
def test_an_event_time_the_worker_cannot_parse_fails_before_the_app_and_the_next_event_is_judged(estate, event_time):
    """A known limit, outside the app's code: the worker's converter (azure.functions
    EventGridEventInConverter) parses eventTime before the app runs, so such an event gets
    no record, only a failed invocation (the host logs it; Event Grid retries, then
    dead-letters it). ARM's system topic always sends a valid time. What the app owes:
    nothing acted on, and the events after it handled as usual."""
    event = quiet_event()
    event["eventTime"] = event_time
    assert invoke("storage_exposure", event) is not None
    assert estate.records() == []
    assert invoke("storage_exposure", quiet_event()) is None
    assert [r.outcome for r in estate.records()] == ["compliant"]
    assert effective_writes(estate.emulator) == []


def test_an_event_id_reused_for_another_resource_is_not_silently_dropped(estate, emulator):
    first = b.container(ACCOUNT["id"], "first", "Container")
    second = b.container(ACCOUNT["id"], "second", "Container")
    emulator.seed([first, second])
    for container in (first, second):
        estate.deliver(write_event(container["id"], CONTAINER_WRITE, event_id="reused-event-id"))
        estate.drain()
    assert {r.resource_id for r in estate.records()} == {first["id"], second["id"]}


# -- property: any event, any Event Grid function ----------------------------------------------------
_JSON_LEAVES = (st.none() | st.booleans() | st.integers(-2 ** 63, 2 ** 64) | st.floats(allow_nan=False)
                | st.text(max_size=40))


def _json_containers(inner):
    # A named function: hypothesis cannot see a two-line lambda use its argument (and warns).
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)


JSON_VALUES = st.recursive(_JSON_LEAVES, _json_containers, max_leaves=10)
HOSTILE_PIECES = ["..", ".", "/", "//", "%2f", "?", "#", "&", "'", '"', "|", ";", "*", " ", "\t", "\n", "\r\n",
                  "\x00", "\u202e", "\u200b", "\u0430", "\uff10", "\u2215", "\uff0f", "resourceGroups", "providers",
                  b.OTHER_SUBSCRIPTION, "rg-containment"]
ID_BASES = [QUIET_ID, ACCOUNT["id"], OWN_ACCOUNT["id"], OWN_CONTAINER["id"], FOREIGN["id"], UNTAGGED["id"],
            f"/subscriptions/{SUB}", b.RG_ID]


@st.composite
def hostile_id(draw) -> str:
    base = draw(st.sampled_from(ID_BASES))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(base)))
        base = base[:at] + draw(st.sampled_from(HOSTILE_PIECES)) + base[at + draw(st.integers(0, 3)):]
    return draw(st.sampled_from([base, base.upper(), base.lower()]))


FIELDS = [("id",), ("eventType",), ("subject",), ("topic",), ("dataVersion",), ("data",), ("data", "operationName"),
          ("data", "resourceUri"), ("data", "subscriptionId"), ("data", "claims"), ("data", "claims", OID),
          ("data", "claims", "appid"), ("data", "claims", "name"), ("data", "authorization"),
          ("data", "authorization", "evidence"), ("data", "status"), ("data", "tenantId")]
MUTATIONS = st.lists(st.tuples(st.sampled_from(FIELDS), st.one_of(JSON_VALUES, hostile_id(), st.just(_DELETE),
                                                                  st.sampled_from(HOSTILE_IDS + [CYRILLIC_A]))),
                     min_size=1, max_size=3)


def test_any_event_to_any_event_grid_function_leaves_one_record_and_acts_on_nothing(estate, emulator,
                                                                                      record_property):
    app = estate
    seen: set[str] = set()
    tried = []

    @settings(max_examples=80, **BOUNDED)
    @given(function=st.sampled_from(EVENT_FUNCTIONS), mutations=MUTATIONS)
    def deliver_anything(function, mutations):
        event = quiet_event()
        for path, value in mutations:
            set_path(event, path, value if value is _DELETE else copy.deepcopy(value))
        tried.append(event)
        error = invoke(function, event)
        assert error is None, f"{function} raised {error!r}"
        records = new_records(app, seen)
        id_changed = any(path == ("id",) for path, _ in mutations)
        assert len(records) == 1 or (id_changed and not records), [(r.outcome, r.reason) for r in records]
        # The app's own exposed container is reported (never acted on); nothing else is found.
        assert all(r.outcome in ("rejected", "ignored", "compliant") or (
            r.outcome == "reported" and r.own_deployment and r.resource_id.lower().startswith(OWN_GROUP.lower()))
            for r in records), records

    deliver_anything()
    app.drain()
    assert effective_writes(emulator) == []  # the quiet container is compliant; every trap is off limits
    assert_scope_safe(emulator)
    record_property("inputs_tried", len(tried))


# -- ARM IDs on their own ------------------------------------------------------------------------------
def test_resource_ids_that_parse_are_plain_arm_ids_and_all_others_are_refused(record_property):
    import re

    from containment.core.ids import MalformedResourceId, parse_resource_id

    tried = []

    @settings(max_examples=600, **BOUNDED)
    @given(text=st.one_of(hostile_id(), st.text(max_size=300), st.sampled_from(HOSTILE_IDS)))
    def parse(text):
        tried.append(text)
        try:
            parsed = parse_resource_id(text)
        except MalformedResourceId as refused:
            assert str(refused)
            return
        assert re.fullmatch(r"[A-Za-z0-9_\-.()/]+", text), text  # nothing a URL or a filter could read otherwise
        segments = text.split("/")
        assert "." not in segments and ".." not in segments and "" not in segments[1:]
        assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", parsed.subscription)
        assert parsed.is_within(f"/subscriptions/{parsed.subscription}")

    parse()
    for text in WRONG_TYPES:
        with pytest.raises(MalformedResourceId):
            parse_resource_id(text)
    record_property("inputs_tried", len(tried) + len(WRONG_TYPES))


# -- settings with bad values ----------------------------------------------------------------------------
BAD_SETTINGS = {
    "CONTAINMENT_MODE": ["Enforce", "enforce\x00", "on", "1", "dry_run"],
    "CONTAINMENT_SUBSCRIPTIONS": ["*", "all", CYRILLIC_A, FULLWIDTH_0, ZERO_WIDTH, SUB + ";" + SUB, SUB[:-1],
                                  f"/subscriptions/{SUB}"],
    "CONTAINMENT_SCOPE_TAG": ["synthetic", "=synthetic", "data-classification=", "="],
    "CONTAINMENT_PROTECTED_SCOPES": ["rg-synthetic", "subscriptions/x", "https://management.azure.com/subscriptions/x"],
    "CONTAINMENT_OWN_SCOPES": ["rg-containment", "*"],
    "CONTAINMENT_SELF_PRINCIPAL_ID": ["me", CYRILLIC_A, SUB + "," + SUB],
    "CONTAINMENT_ALLOWED_PRINCIPALS": [f"{SUB}@tomorrow", f"{SUB}@2026-12-31T18:00:00", "everyone"],
    "CONTAINMENT_ALLOWED_CIDRS": ["10.20.0.0/33", "10.20.0.0/16;10.30.0.0/16", "any", "10.20.0.0-10.20.255.255"],
    "CONTAINMENT_QUEUE": ["Containment", "a", "-queue", "queue--x", "q" * 64, "queue/../x"],
    "CONTAINMENT_AUTO_CONTAIN": ["everything", "storage_tls_below_1_2x", "egress_anonymous_read"],
    "CONTAINMENT_ROLE_DELETION_APPROVAL_SCOPES": ["tenant", "Subscription"],
    "CONTAINMENT_NSG_STRATEGY": ["delete-rule", ""],
    "CONTAINMENT_APPROVAL_ACTIONS": ["rotate_keys"],
    "CONTAINMENT_APPROVAL_EXPIRY_HOURS": ["0", "-1", "a day", "24h"],
    "CONTAINMENT_MAX_ACTIONS_PER_HOUR": ["0", "-5", "2.5", "many", "1e3"],
    "CONTAINMENT_INCIDENT_WINDOW_HOURS": ["0", "x"],
    "CONTAINMENT_NETWORK_LOCK": ["lock"],
    "CONTAINMENT_LOG_WORKSPACE_ID": ["workspace", "/subscriptions/x/workspaces/y"],
    "CONTAINMENT_EGRESS_SCHEDULE": ["*/5 * * * *", "every 5 minutes", "0 */5 * * * * *", "0 */5 * * * ;"],
    "CONTAINMENT_SWEEP_SCHEDULE": ["hourly"],
    "CONTAINMENT_EGRESS_WINDOW_MINUTES": ["0", "5.5", "five"],
    "CONTAINMENT_EGRESS_LAG_MINUTES": ["-10"],
    "CONTAINMENT_EGRESS_MAX_WINDOWS": ["0"],
    "CONTAINMENT_EGRESS_BASELINE_DAYS": ["0", "7d"],
    "CONTAINMENT_EGRESS_VOLUME_FLOOR_MB": ["0", "-1", "2 GB"],
    "CONTAINMENT_EGRESS_VOLUME_SIGMAS": ["0", "four"],
    "CONTAINMENT_EGRESS_NEW_CALLER_MB": ["-512"],
    "CONTAINMENT_EGRESS_ENUMERATION_BLOBS": ["0", "1000.5"],
    "CONTAINMENT_EGRESS_CONTAINMENT": ["critical:format_disk", "urgent:lock_account_network"],
    "CONTAINMENT_NOTIFY_TOPIC_ENDPOINT": ["http://topic.example/api/events", "topic", "https://"],
    "CONTAINMENT_LEDGER_TABLE": ["decisions-table", "1decisions", "ab", "d" * 64, "decisions'"],
    "LOCAL_AZURE_ENDPOINT": ["https://management.azure.com", "http://127.0.0.1:8443", "https://127.0.0.1:8443/x",
                             "https://127.0.0.1.example.com:8443"],
}


def test_every_bad_setting_value_is_refused_by_name(record_property):
    from containment.core.settings import SETTINGS as ALL
    from containment.core.settings import SettingsError
    from tests.helpers.settings import load_settings

    assert set(BAD_SETTINGS) <= {s.name for s in ALL}
    tried = 0
    for name, values in BAD_SETTINGS.items():
        for value in values:
            tried += 1
            environ = {name: value}
            if name == "LOCAL_AZURE_ENDPOINT":
                environ["LOCAL_AZURE_CA_BUNDLE"] = __file__
            with pytest.raises(SettingsError) as refused:
                load_settings(environ)
            [problem] = refused.value.problems
            assert problem.startswith(f"{name}={value.strip()!r}: ") and "accepted" in problem, problem
    record_property("inputs_tried", tried)


def test_a_bad_setting_stops_the_function_before_it_touches_anything_and_a_fixed_one_resumes(
        app, emulator, record_property):
    from containment.core.settings import SettingsError

    public = b.container(ACCOUNT["id"], "training", "Container")
    emulator.seed([ACCOUNT, public])
    app.configure(**{**SETTINGS, "CONTAINMENT_MODE": "Enforce", "CONTAINMENT_SUBSCRIPTIONS": "*",
                     "CONTAINMENT_MAX_ACTIONS_PER_HOUR": "0"})
    event = write_event(public["id"], CONTAINER_WRITE)
    [invocation] = app.deliver(event)
    assert isinstance(invocation.error, SettingsError)
    assert [p.split("=")[0] for p in invocation.error.problems] == [
        "CONTAINMENT_MODE", "CONTAINMENT_SUBSCRIPTIONS", "CONTAINMENT_MAX_ACTIONS_PER_HOUR"]  # all of them, at once
    assert emulator.traffic == []
    app.configure(**SETTINGS)  # the operator fixes them; Event Grid delivers the event again
    assert all(i.error is None for i in app.deliver(event))
    app.drain()
    assert [r.outcome for r in app.records()] == ["contained"]
    record_property("inputs_tried", 3)


def test_any_setting_value_is_accepted_or_refused_by_name_never_a_crash(record_property):
    from containment.core.settings import SETTINGS as ALL
    from containment.core.settings import SettingsError
    from tests.helpers.settings import load_settings

    tried = []
    names = [s.name for s in ALL if not s.name.startswith("LOCAL_AZURE")]
    numbers = st.sampled_from(["nan", "inf", "-inf", "1e400", "-0", "0x10", "\u0661\u0662", "1_000", " 5 ", "5\n"])

    @settings(max_examples=400, **BOUNDED)
    @given(name=st.sampled_from(names), value=st.one_of(st.text(max_size=60), numbers,
                                                        st.sampled_from(sum(BAD_SETTINGS.values(), []))))
    def load(name, value):
        tried.append(value)
        try:
            load_settings({name: value})
        except SettingsError as refused:
            assert [p.split("=", 1)[0] for p in refused.problems] == [name]

    load()
    record_property("inputs_tried", len(tried))


FLOAT_SETTINGS = ["CONTAINMENT_APPROVAL_EXPIRY_HOURS", "CONTAINMENT_INCIDENT_WINDOW_HOURS",
                  "CONTAINMENT_EGRESS_VOLUME_FLOOR_MB", "CONTAINMENT_EGRESS_VOLUME_SIGMAS",
                  "CONTAINMENT_EGRESS_NEW_CALLER_MB"]


@pytest.mark.parametrize("value", ["nan", "inf", "1e400"])
def test_non_finite_numbers_are_refused(value):
    from containment.core.settings import SettingsError
    from tests.helpers.settings import load_settings

    refused = []
    for name in FLOAT_SETTINGS:
        try:
            load_settings({name: value})
        except SettingsError:
            refused.append(name)
    assert refused == FLOAT_SETTINGS


@pytest.mark.parametrize("value", ["nan", "inf", "1e400", "1e12"])
def test_a_non_finite_or_absurd_expiry_is_refused_by_name(value):
    from containment.core.settings import SettingsError
    from tests.helpers.settings import load_settings

    with pytest.raises(SettingsError, match=f"CONTAINMENT_APPROVAL_EXPIRY_HOURS='{value}'"):
        load_settings({"CONTAINMENT_APPROVAL_EXPIRY_HOURS": value})


@pytest.mark.parametrize("name", ["CONTAINMENT_OWN_SCOPES", "CONTAINMENT_PROTECTED_SCOPES"])
@pytest.mark.parametrize("value", [OWN_GROUP.replace("containment", "c\u043entainment"),
                                   OWN_GROUP.replace(SUB, CYRILLIC_A), "/subscriptions/x/resourceGroups/rg",
                                   f"/subscriptions/{SUB}/resourceGroups/rg/../rg-containment"],
                         ids=["cyrillic o in the group", "cyrillic a in the subscription", "not a GUID", "traversal"])
def test_scope_settings_refuse_what_parse_resource_id_refuses(name, value):
    from containment.core.settings import SettingsError
    from tests.helpers.settings import load_settings

    with pytest.raises(SettingsError):
        load_settings({name: value})


def test_a_subscriptions_setting_of_only_separators_is_refused():
    from containment.core.settings import SettingsError
    from tests.helpers.settings import load_settings

    with pytest.raises(SettingsError):
        load_settings({"CONTAINMENT_SUBSCRIPTIONS": " , "})


# -- Log Analytics answers with missing columns or wrong types (the egress scan) ----------------------
WORKSPACE = "4f1d3c2b-0a9e-4d8c-8b7a-6f5e4d3c2b1a"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
WINDOW_TYPES = {"ResourceId": "string", "AccountName": "string", "Caller": "string", "Bytes": "long",
                "Blobs": "long", "Requests": "long", "AnonymousRequests": "long", "KeyOrSasRequests": "long",
                "AuthenticationTypes": "dynamic", "Addresses": "dynamic", "SampleUris": "dynamic",
                "FirstRead": "datetime", "LastRead": "datetime", "Keys": "dynamic", "SasSignatures": "dynamic",
                "UnknownKeyRequests": "long", "SasPolicyViolations": "long", "SasExpiryStatuses": "dynamic"}
# The copy query's columns (egress_copy.kql): the scan asks it every window; here it finds no copy.
COPY_TYPES = {"ResourceId": "string", "Operation": "string", "Side": "string", "SourceAccount": "string",
              "DestinationAccount": "string", "Caller": "string", "Requests": "long", "Objects": "dynamic",
              "SourceUris": "dynamic", "DestinationUris": "dynamic", "Keys": "dynamic", "SasSignatures": "dynamic",
              "UnknownKeyRequests": "long", "RequesterTenants": "dynamic"}
BASELINE_TYPES = {"ResourceId": "string", "Caller": "string", "Mean": "real", "StdDev": "real",
                  "ActiveWindows": "long"}


def window_row(**changes) -> dict:
    row = {"ResourceId": ACCOUNT["id"].lower(), "AccountName": ACCOUNT["name"], "Caller": "198.51.100.7",
           "Bytes": 1024, "Blobs": 1, "Requests": 1, "AnonymousRequests": 1, "KeyOrSasRequests": 0,
           "AuthenticationTypes": ["Anonymous"], "Addresses": ["198.51.100.7"],
           "SampleUris": [f"https://{ACCOUNT['name']}.blob.core.windows.net/train/part-0"],
           "FirstRead": "2026-11-24T11:46:00Z", "LastRead": "2026-11-24T11:46:00Z", "Keys": [""],
           "SasSignatures": [""], "UnknownKeyRequests": 0, "SasPolicyViolations": 0, "SasExpiryStatuses": [""]}
    row.update(changes)
    return {k: v for k, v in row.items() if v is not _DELETE}


def typed_answer(rows: list[dict]) -> dict:
    """`answer`, each column typed by the first value it holds (as a real query would type it)."""
    kinds = {bool: "bool", int: "long", float: "real", str: "string", list: "dynamic", dict: "dynamic"}
    types = {}
    for row in rows:
        for column, value in row.items():
            if column not in types and value is not None:
                types[column] = kinds[type(value)]
    return answer(rows, types)


def answer(rows: list[dict], types: dict[str, str]) -> dict:
    """The query API's answer (a table of typed columns); dynamic values go as JSON text."""
    columns = list(dict.fromkeys(k for row in rows for k in row)) or list(types)
    wire = [[json.dumps(row.get(c)) if types.get(c) == "dynamic" and not isinstance(row.get(c), str) else row.get(c)
             for c in columns] for row in rows]
    return {"tables": [{"name": "PrimaryResult", "columns": [{"name": c, "type": types.get(c, "string")}
                                                             for c in columns], "rows": wire}]}


@pytest.fixture
def scan_answering(app, emulator, monkeypatch):
    """Run egress_scan with Log Analytics answering `window` (and `baseline`) as given:
    the real SDK reads the answer, the app judges it. The timer's error, or None."""

    emulator.seed([ACCOUNT, *TRAPS])

    def run(window: dict, baseline: dict | None = None, **settings_):
        def query(body, now=None):
            if "print Now" in body.get("query", ""):  # the service's clock: what the scan runs against
                return 200, answer([{"Now": NOW.isoformat().replace("+00:00", "Z")}], {"Now": "datetime"})
            if "PutBlockFromURL" in body.get("query", ""):  # the copy query (egress_copy.kql)
                return 200, answer([], COPY_TYPES)
            baseline_query = "lookback_start" in body.get("query", "")
            return 200, (baseline or answer([], BASELINE_TYPES)) if baseline_query else window

        monkeypatch.setattr(emulator.logs, "query", query)
        app.configure(**{**SETTINGS, "CONTAINMENT_LOG_WORKSPACE_ID": WORKSPACE, **settings_})
        return app.fire_at("egress_scan", NOW).error
    return run


def test_a_well_formed_answer_is_judged(scan_answering, app):
    assert scan_answering(answer([window_row()], WINDOW_TYPES)) is None
    assert [r.rules for r in app.records()] == [["egress_anonymous_read"]]


@pytest.mark.parametrize("resource_id", [None, "", "'; drop table decisions", HOSTILE_IDS[0], 42,
                                         FOREIGN["id"].lower(), UNTAGGED["id"].lower()])
def test_a_row_naming_no_protected_account_in_scope_is_passed_over(scan_answering, app, emulator, resource_id):
    rows = [window_row(ResourceId=resource_id)]
    assert scan_answering(answer(rows, {**WINDOW_TYPES, "ResourceId": "dynamic" if resource_id == 42 else "string"}
                                 )) is None
    assert app.records() == []
    assert effective_writes(emulator) == []
    assert_scope_safe(emulator)


def test_a_row_naming_the_apps_own_account_is_reported_and_never_acted_on(scan_answering, app, emulator):
    assert scan_answering(answer([window_row(ResourceId=OWN_ACCOUNT["id"].lower())], WINDOW_TYPES)) is None
    [record] = app.records()
    assert (record.resource_id, record.outcome, record.own_deployment) == (OWN_ACCOUNT["id"], "reported", True)
    assert effective_writes(emulator) == []
    assert_scope_safe(emulator)


def test_logs_of_an_account_in_another_subscription_are_never_acted_on(app, emulator):

    foreign = b.storage_account("synthforeign02", subscription=b.OTHER_SUBSCRIPTION)  # tagged, in another subscription
    read = {"TimeGenerated": "2026-11-24T11:46:00Z", "AccountName": foreign["name"], "_ResourceId": foreign["id"].lower(),
            "Category": "StorageRead", "OperationName": "GetBlob", "StatusCode": "200", "AuthenticationType": "Anonymous",
            "RequesterObjectId": None, "CallerIpAddress": "198.51.100.7:50000", "ResponseBodySize": 100,
            "ObjectKey": f"/{foreign['name']}/x", "Uri": f"https://{foreign['name']}.blob.core.windows.net/x"}
    emulator.seed([foreign], {"StorageBlobLogs": [read]})
    app.configure(**SETTINGS, CONTAINMENT_LOG_WORKSPACE_ID=WORKSPACE)
    assert app.fire_at("egress_scan", NOW).error is None
    assert_scope_safe(emulator)


MALFORMED_ANSWERS = {
    "no ResourceId column": lambda: answer([window_row(ResourceId=_DELETE)], WINDOW_TYPES),
    "no Caller column": lambda: answer([window_row(Caller=_DELETE)], WINDOW_TYPES),
    "Bytes as text": lambda: answer([window_row(Bytes="1024")], {**WINDOW_TYPES, "Bytes": "string"}),
    "AnonymousRequests as text": lambda: answer([window_row(AnonymousRequests="1")],
                                                {**WINDOW_TYPES, "AnonymousRequests": "string"}),
    "Addresses not JSON": lambda: answer([window_row(Addresses="[198.51.100.7")], WINDOW_TYPES),
    "no tables": lambda: {"tables": []},
}


@pytest.mark.parametrize("case", list(MALFORMED_ANSWERS))
def test_a_malformed_answer_ends_as_a_failed_record_not_a_crash(scan_answering, app, case):
    assert scan_answering(MALFORMED_ANSWERS[case]()) is None
    assert [r.outcome for r in app.records()] == ["failed"]


def test_a_baseline_without_its_statistics_ends_as_a_failed_record(scan_answering, app):
    baseline = answer([{"ResourceId": ACCOUNT["id"].lower(), "Caller": "198.51.100.7", "ActiveWindows": 3}],
                      BASELINE_TYPES)
    assert scan_answering(answer([window_row(AnonymousRequests=0)], WINDOW_TYPES), baseline) is None
    assert [r.outcome for r in app.records()] in ([], ["failed"])


def test_addresses_as_text_are_not_read_character_by_character(scan_answering, app):
    row = window_row(AnonymousRequests=0, KeyOrSasRequests=1, Addresses="10.20.3.4", Caller="10.20.3.4")
    assert scan_answering(answer([row], {**WINDOW_TYPES, "Addresses": "string"}),
                          CONTAINMENT_ALLOWED_CIDRS="10.20.0.0/16") is None
    assert all(r.outcome == "failed" for r in app.records())


def test_any_answer_ends_in_findings_or_a_failed_record(scan_answering, app, record_property):
    tried = []
    columns = list(WINDOW_TYPES)
    values = st.one_of(st.none(), st.booleans(), st.integers(-10, 10 ** 12), st.floats(allow_nan=False),
                       st.text(max_size=20), st.lists(st.text(max_size=15), max_size=3),
                       st.sampled_from([ACCOUNT["id"].lower(), OWN_ACCOUNT["id"].lower(), FOREIGN["id"].lower()]))

    @settings(max_examples=25, phases=[Phase.explicit, Phase.generate], **BOUNDED)  # no shrinking: it is slow here
    @given(rows=st.lists(st.dictionaries(st.sampled_from(columns), values, max_size=len(columns)), min_size=1,
                         max_size=3))
    def scan(rows):
        tried.append(rows)
        assert scan_answering(typed_answer(rows)) is None

    try:
        scan()
    finally:
        record_property("inputs_tried", len(tried))


# -- scenario files with errors ----------------------------------------------------------------------------
def replay_main(*paths) -> int:
    from containment.__main__ import main

    return main(["replay", *map(str, paths)])


VALID_SCENARIO = {"name": "ok", "settings": {"CONTAINMENT_MODE": "enforce"}, "resources": [ACCOUNT],
                  "logs": {"StorageBlobLogs": []},
                  "steps": [{"at": "2026-11-24T10:00:00Z", "event": write_event(ACCOUNT["id"], ACCOUNT_WRITE)},
                            {"at": "2026-11-24T10:05:00Z", "timer": "egress_scan"}]}
BAD_SCENARIOS = [  # (what, file contents, the JSON path the message must name)
    ("truncated JSON", '{"steps": [', "$"),
    ("not UTF-8", b"\xff\xfe\x00{", "$"),
    ("a list", "[]", "$"),
    ("a number", "42", "$"),
    ("name a number", {**VALID_SCENARIO, "name": 7}, "$.name"),
    ("settings a list", {**VALID_SCENARIO, "settings": ["CONTAINMENT_MODE=enforce"]}, "$.settings"),
    ("a setting a boolean", {**VALID_SCENARIO, "settings": {"CONTAINMENT_MODE": True}}, "$.settings.CONTAINMENT_MODE"),
    ("a bad setting", {**VALID_SCENARIO, "settings": {"CONTAINMENT_SUBSCRIPTIONS": CYRILLIC_A}},
     "$.settings.CONTAINMENT_SUBSCRIPTIONS"),
    ("resources an object", {**VALID_SCENARIO, "resources": {"id": ACCOUNT["id"]}}, "$.resources"),
    ("logs a list", {**VALID_SCENARIO, "logs": []}, "$.logs"),
    ("log rows an object", {**VALID_SCENARIO, "logs": {"StorageBlobLogs": {}}}, "$.logs"),
    ("no steps", {k: v for k, v in VALID_SCENARIO.items() if k != "steps"}, "$.steps"),
    ("steps empty", {**VALID_SCENARIO, "steps": []}, "$.steps"),
    ("a step a string", {**VALID_SCENARIO, "steps": ["event"]}, "$.steps[0]"),
    ("a step of two kinds", {**VALID_SCENARIO, "steps": [{"at": "2026-11-24T10:00:00Z", "event": {},
                                                          "timer": "egress_scan"}]}, "$.steps[0]"),
    ("a step of no kind", {**VALID_SCENARIO, "steps": [{"at": "2026-11-24T10:00:00Z"}]}, "$.steps[0]"),
    ("an event a list", {**VALID_SCENARIO, "steps": [{"at": "2026-11-24T10:00:00Z", "event": []}]},
     "$.steps[0].event"),
    ("an unknown timer", {**VALID_SCENARIO, "steps": [{"at": "2026-11-24T10:00:00Z", "timer": "format_disk"}]},
     "$.steps[0].timer"),
    ("a timer a list", {**VALID_SCENARIO, "steps": [{"at": "2026-11-24T10:00:00Z", "timer": ["egress_scan"]}]},
     "$.steps[0].timer"),
    ("an http step with PATCH", {**VALID_SCENARIO, "steps": [{"at": "2026-11-24T10:00:00Z",
                                                             "http": {"method": "PATCH", "route": "contain"}}]},
     "$.steps[0].http"),
    ("an http step without route", {**VALID_SCENARIO, "steps": [{"at": "2026-11-24T10:00:00Z", "http": {}}]},
     "$.steps[0].http"),
    ("no time", {**VALID_SCENARIO, "steps": [{"event": {}}]}, "$.steps[0].at"),
    ("a time without zone", {**VALID_SCENARIO, "steps": [{"at": "2026-11-24T10:00:00", "event": {}}]},
     "$.steps[0].at"),
    ("a time a number", {**VALID_SCENARIO, "steps": [{"at": 1764000000, "event": {}}]}, "$.steps[0].at"),
    ("an impossible time", {**VALID_SCENARIO, "steps": [{"at": "2026-02-30T10:00:00Z", "event": {}}]},
     "$.steps[0].at"),
    ("a second, later bad step", {**VALID_SCENARIO, "steps": VALID_SCENARIO["steps"] + [{"at": "soon", "event": {}}]},
     "$.steps[2].at"),
]


def write_scenario(folder, name: str, contents) -> object:
    path = folder / (name.replace(" ", "-").replace(",", "") + ".json")
    if isinstance(contents, bytes):
        path.write_bytes(contents)
    else:
        path.write_text(contents if isinstance(contents, str) else json.dumps(contents))
    return path


def test_a_malformed_scenario_exits_2_naming_the_file_and_the_json_path(tmp_path, capsys, record_property):
    problems = []
    for what, contents, json_path in BAD_SCENARIOS:
        path = write_scenario(tmp_path, what, contents)
        code = replay_main(path)
        out, err = capsys.readouterr()
        if code != 2 or f"{path}: {json_path}: " not in err or out:
            problems.append(f"{what}: exit {code}, stderr {err.strip()[-200:]!r}")
    # Every file is checked before anything runs: a bad second file stops the good first one.
    good, bad = write_scenario(tmp_path, "good", VALID_SCENARIO), write_scenario(tmp_path, "bad", "[]")
    assert replay_main(good, bad) == 2 and capsys.readouterr().out == ""
    assert problems == []
    record_property("inputs_tried", len(BAD_SCENARIOS) + 1)


def test_scenario_errors_found_while_running_name_the_file_and_the_json_path(tmp_path, capsys, record_property):
    cases = [("a resource without an ID", {**VALID_SCENARIO, "resources": [{"type": "x"}]}, "$.resources"),
             ("a log row of the wrong type", {**VALID_SCENARIO, "logs": {"StorageBlobLogs": [{"ResponseBodySize": "x"}]}},
              "$.logs.StorageBlobLogs")]
    for what, contents, json_path in cases:
        path = write_scenario(tmp_path, what, contents)
        assert replay_main(path) == 2
        err = capsys.readouterr().err
        assert f"{path}: {json_path}" in err, err[-300:]
    record_property("inputs_tried", len(cases))


@pytest.mark.parametrize("what, contents, json_path", [
    ("deeply nested", "[" * 100_000 + "]" * 100_000, "$"),
    ("a time past the calendar", {**VALID_SCENARIO, "steps": [{"at": "9999-12-31T23:59:59-01:00", "event": {}}]},
     "$.steps[0].at")], ids=["deeply nested", "a time past the calendar"])
def test_pathological_scenarios_exit_2_naming_the_file(tmp_path, capsys, what, contents, json_path):
    path = write_scenario(tmp_path, what, contents)
    try:
        code = replay_main(path)
    except BaseException as error:  # noqa: BLE001 - what the command line would die of
        code = f"raised {type(error).__name__}"
    assert code == 2 and f"{path}: {json_path}" in capsys.readouterr().err


def test_an_http_step_to_no_function_names_the_file(tmp_path, capsys):
    path = write_scenario(tmp_path, "http-nowhere", {**VALID_SCENARIO, "steps": [
        {"at": "2026-11-24T10:00:00Z", "http": {"method": "POST", "route": "format-disk"}}]})
    assert replay_main(path) == 2
    assert f"{path}: $.steps[0].http" in capsys.readouterr().err


def test_any_scenario_is_loaded_or_refused_naming_the_file_and_a_json_path(tmp_path, record_property):
    from localazure.scenario import ScenarioError, load_scenario

    path = tmp_path / "fuzzed.json"
    tried = []
    where = st.sampled_from([(), ("name",), ("settings",), ("settings", "CONTAINMENT_MODE"), ("resources",),
                             ("logs",), ("logs", "StorageBlobLogs"), ("steps",), ("steps", 0), ("steps", 0, "at"),
                             ("steps", 0, "event"), ("steps", 1, "timer"), ("steps", 1), ("steps", 2)])

    @settings(max_examples=250, **BOUNDED)
    @given(changes=st.lists(st.tuples(where, JSON_VALUES), min_size=1, max_size=3))
    def load(changes):
        document = copy.deepcopy(VALID_SCENARIO)
        for keys, value in changes:
            if not keys:
                document = value
                continue
            target = document
            for key in keys[:-1]:
                try:
                    target = target[key]
                except (KeyError, IndexError, TypeError):
                    break
            else:
                try:
                    target[keys[-1]] = value
                except (IndexError, TypeError):
                    target.append(value) if isinstance(target, list) else None
        path.write_text(json.dumps(document))
        tried.append(document)
        try:
            load_scenario(path)
        except ScenarioError as refused:
            assert str(refused).startswith(f"{path}: $"), str(refused)

    load()
    record_property("inputs_tried", len(tried))


# -- the containment queue: only the app writes it, but its storage account is reachable -----------------
def test_malformed_containment_requests_are_rejected_on_the_record_and_the_queue_flows_on(app, emulator,
                                                                                          record_property):
    public = b.container(ACCOUNT["id"], "training", "Container")
    emulator.seed([ACCOUNT, public])
    app.configure(**SETTINGS)
    bodies = ["not json", "[]", "42", "null", '{"key": "k"}', '{"key": "k", "plan": "everything"}',
              json.dumps({"key": "k", "resource_id": "r", "plan": []}),
              json.dumps({"key": "k", "resource_id": "r", "plan": [{"action": "delete_everything"}]}),
              json.dumps({"key": "k", "resource_id": "r", "plan": [], "surprise": True}),
              # the whole decision record, as requests were once: what the worker acts on never travels
              json.dumps({"key": "k", "resource_id": "r", "outcome": "", "mode": "enforce", "reason": "",
                          "plan": [{"action": "make_container_private", "target": "r"}]}),
              "\u0000\uffff" * 100]
    for body in bodies:
        app.runtime.queue.send_message(body)
    app.deliver(write_event(public["id"], CONTAINER_WRITE))
    app.drain()
    outcomes = sorted(r.outcome for r in app.records())
    assert outcomes == ["contained"] + ["rejected"] * len(bodies)
    assert all("malformed containment request" in r.reason for r in app.records() if r.outcome == "rejected")
    assert [path for _, path, _ in effective_writes(emulator)] == [public["id"]]
    record_property("inputs_tried", len(bodies))


@pytest.mark.parametrize("request_", [{"resource_id": 42}, {"key": 7}, {"resource_id": ["x"]}],
                         ids=["resource_id a number", "key a number", "resource_id a list"])
def test_containment_requests_with_wrong_field_types_are_rejected_on_the_record(app, monkeypatch, request_):
    monkeypatch.setenv("AzureFunctionsJobHost__extensions__queues__maxDequeueCount", "2")
    app.configure(**SETTINGS)
    body = {"key": "k", "resource_id": ACCOUNT["id"],
            "plan": [{"action": "disable_blob_public_access", "target": ACCOUNT["id"]}], **request_}
    app.runtime.queue.send_message(json.dumps(body))
    app.drain()
    assert [r.outcome for r in app.records()] == ["rejected"]


@pytest.mark.parametrize("target", [FOREIGN["id"], OWN_ACCOUNT["id"]], ids=["foreign", "own"])
def test_a_forged_containment_request_outside_the_scope_is_refused(app, emulator, target):
    emulator.seed(TRAPS)
    app.configure(**SETTINGS)
    forged = forged_decision("forged", target, "disable_blob_public_access")
    _, claim = app.runtime.ledger.claim(forged)  # the forger can write the table too
    app.runtime.queue.send_message(ContainmentRequest.of(forged, claim.etag).to_message())
    app.drain()
    assert_scope_safe(emulator)
    [record] = app.records()
    assert record.outcome == "rejected" and "containment request refused" in record.reason


def test_a_well_formed_request_nobody_claimed_is_refused_on_the_record(app, emulator):
    """In scope and well formed, but detection never claimed it: forged by whoever can
    write the queue (not the table), so it is kept as evidence and not carried out."""
    public = b.container(ACCOUNT["id"], "open", "Container")
    emulator.seed([ACCOUNT, public])
    app.configure(**SETTINGS)
    app.runtime.queue.send_message(ContainmentRequest.of(
        forged_decision("unclaimed", public["id"], "make_container_private"), 'W/"datetime\'2026-11-30T00%3A00%3A00Z\'"').to_message())
    app.drain()
    [record] = app.records()
    assert record.outcome == "rejected" and "no claimed decision unclaimed" in record.reason
    assert effective_writes(emulator) == []


# -- operator requests -----------------------------------------------------------------------------------
def test_break_glass_refuses_what_is_malformed_or_outside_the_scope(app, emulator, record_property):
    import function_app
    from localazure.functions_host import call_http
    from tests.helpers.operators import ONCALL

    emulator.seed(ESTATE)
    app.configure(**SETTINGS)
    cases = [({"resourceId": HOSTILE_IDS[0]}, 400), ({"resourceId": QUIET_ID.replace(SUB, CYRILLIC_A)}, 400),
             ({"resourceId": 42}, 400), ({"resourceId": None}, 400), ([QUIET_ID], 400), ("contain it", 400),
             ({"resourceId": FOREIGN["id"]}, 403), ({"resourceId": OWN_ACCOUNT["id"]}, 403),
             ({"resourceId": OWN_CONTAINER["id"].upper()}, 403),
             ({"resourceId": QUIET_ID, "actions": "all"}, 400), ({"resourceId": QUIET_ID, "actions": [{"x": 1}]}, 400),
             ({"resourceId": QUIET_ID, "actions": ["delete_role_assignment"]}, 400),
             ({"resourceId": QUIET_ID, "actions": []}, 400)]
    for body, status in cases:
        response = call_http(function_app.app, "POST", "contain", body, ONCALL)
        assert response.status_code == status, (body, response.get_body())
        assert "error" in json.loads(response.get_body())
    not_json = call_http(function_app.app, "POST", "exemptions", None, ONCALL)
    assert not_json.status_code == 400
    app.drain()
    # Each refusal is on the record, once, naming what was wrong; nothing is acted on.
    records = app.records()
    assert len(records) == len(cases) + 1 and {(r.outcome, r.operation) for r in records} == {
        ("rejected", "operator-request")}
    assert effective_writes(emulator) == []
    assert_scope_safe(emulator)
    record_property("inputs_tried", len(cases) + 1)
