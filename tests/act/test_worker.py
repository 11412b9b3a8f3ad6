"""The containment worker (containment.act.worker) through the queue function: one
containment per claimed decision, requests that are only references, retries and poison
handling, every failure on the record."""
from __future__ import annotations

import base64
import json
from dataclasses import replace

from containment.core.records import MAX_REQUEST_BYTES, ContainmentRequest, DecisionRecord, PlannedAction, plan_digest
from tests.helpers import arm_bodies as b
from tests.helpers.concurrency import at_once
from tests.helpers.events import CONTAINER_WRITE, write_event
from tests.helpers.traps import effective_writes, forged_decision

ACCOUNT = b.storage_account()
PUBLIC = b.container(ACCOUNT["id"], "training", "Container")
SETTINGS = {"CONTAINMENT_MODE": "enforce", "CONTAINMENT_SUBSCRIPTIONS": b.SUBSCRIPTION}


def container_access(emulator, container=PUBLIC) -> str:
    return emulator.arm.get(container["id"])["properties"]["publicAccess"]


def test_two_instances_taking_two_requests_for_one_claim_at_once_act_once(app, emulator):
    """The request detection queued and a second one for the same claim (as a redelivery queues
    it again when the first seems lost), taken by two instances at once: the claim, moved under
    the ETag both carry, lets exactly one act, and the budget is spent once."""
    emulator.seed([ACCOUNT, PUBLIC])
    app.configure(CONTAINMENT_MODE="enforce")
    event = write_event(PUBLIC["id"], CONTAINER_WRITE)
    app.deliver(event)
    claim = app.runtime.ledger.get_claim(event["id"], PUBLIC["id"])
    app.runtime.queue.send_message(ContainmentRequest.of(claim.decision, claim.etag).to_message())
    assert app.runtime.queue.get_queue_properties().approximate_message_count == 2
    at_once(app.drain, app.drain)
    assert [r.outcome for r in app.records()] == ["contained"]
    assert len(app.writes()) == 1
    budget = json.loads(app.runtime.ledger.table.get_entity("budget", "containment")["per_minute"])
    assert sum(budget.values()) == 1


def test_a_claim_whose_request_was_lost_is_queued_again_by_a_redelivery(app, emulator, monkeypatch):
    """Detection claimed, then died before queuing: the claim waits `queued`; a redelivery of
    the event past REQUEUE_AFTER (Event Grid retries a failed delivery 10 s on at the earliest)
    queues its request again, and it is contained once. A copy sooner than that queues nothing
    (the request is on its way)."""
    from containment.record import conclude

    emulator.seed([ACCOUNT, PUBLIC])
    app.configure(CONTAINMENT_MODE="enforce")
    event = write_event(PUBLIC["id"], CONTAINER_WRITE)
    app.deliver(event)
    app.runtime.queue.clear_messages()  # the request that never left
    app.deliver(event)
    assert app.runtime.queue.get_queue_properties().approximate_message_count == 0
    monkeypatch.setattr(conclude, "REQUEUE_AFTER", 0.0)  # as if this were Event Grid's retry, 10 s on
    app.deliver(event)
    app.drain()
    assert [r.outcome for r in app.records()] == ["contained"] and len(app.writes()) == 1


def test_throttling_and_a_server_error_during_containment_do_not_stop_it(app, emulator):
    emulator.seed([ACCOUNT, PUBLIC])
    app.configure(CONTAINMENT_MODE="enforce")
    throttled = emulator.faults.add("status", path="containers/training$", method="PATCH", status=429, retry_after=0)
    broken = emulator.faults.add("status", path="containers/training$", method="PATCH", status=500, retry_after=0)
    app.deliver(write_event(PUBLIC["id"], CONTAINER_WRITE))
    app.drain()
    assert (throttled.fired, broken.fired) == (1, 1)
    assert [r.outcome for r in app.records()] == ["contained"]
    assert container_access(emulator) == "None"


def test_a_request_that_always_fails_ends_as_one_failed_record_and_the_queue_flows_on(app, emulator, monkeypatch):
    second = b.container(ACCOUNT["id"], "eval", "Blob")
    emulator.seed([ACCOUNT, PUBLIC, second])
    app.configure(CONTAINMENT_MODE="enforce")
    monkeypatch.setenv("AzureFunctionsJobHost__extensions__queues__maxDequeueCount", "2")
    emulator.faults.add("status", path="containers/training$", method="PATCH", status=500, retry_after=0, times=None)
    app.deliver(write_event(PUBLIC["id"], CONTAINER_WRITE))
    app.deliver(write_event(second["id"], CONTAINER_WRITE))
    app.drain()
    by_resource = {r.resource_id: r for r in app.records()}
    assert by_resource[PUBLIC["id"]].outcome == "failed"
    assert "500" in by_resource[PUBLIC["id"]].reason
    assert by_resource[second["id"]].outcome == "contained"
    poison = app.runtime.clients.queue(app.runtime.settings.containment_queue + "-poison")
    assert poison.get_queue_properties().approximate_message_count == 1


def test_a_malformed_containment_request_is_rejected_on_the_record(app, emulator):
    app.configure(CONTAINMENT_MODE="enforce")
    app.runtime.queue.send_message('{"key": "x", "plan": "everything"}')
    app.drain()
    [record] = app.records()
    assert record.outcome == "rejected" and "malformed containment request" in record.reason


def test_a_request_naming_a_claimed_decision_with_another_plan_is_refused(app, emulator):
    """A forger who can write the queue but not the table names a real claimed decision (here
    one held by the blast-radius budget) and asks for more than it decided: the worker acts
    only on the claimed decision's own plan, so the forged plan is refused on the record."""
    public = b.container(ACCOUNT["id"], "open", "Container")
    emulator.seed([ACCOUNT, public])
    app.configure(**SETTINGS)
    claimed = forged_decision("real", public["id"], "make_container_private")
    _, claim = app.runtime.ledger.claim(claimed)
    widened = ContainmentRequest(claimed.key, claimed.resource_id, plan_digest(claimed.planned + (
        PlannedAction("rotate_account_keys", ACCOUNT["id"]),)), claim.etag, 2)
    app.runtime.queue.send_message(widened.to_message())
    app.drain()
    [record] = app.records()
    assert record.outcome == "rejected" and "its plan is not the plan of claimed decision real" in record.reason
    assert effective_writes(emulator) == []


def test_a_request_carries_a_reference_never_the_decision(app, emulator):
    """What detection queues is the key, the resource and the plan's digest: a few hundred
    bytes, whatever evidence or plan the decision carries (an NSG's whole body and a plan of
    many rules stay in the ledger)."""
    from azure.storage.queue import QueueClient, TextBase64DecodePolicy

    public = b.container(ACCOUNT["id"], "training", "Container")
    emulator.seed([ACCOUNT, public])
    app.configure(**SETTINGS)
    app.deliver(write_event(public["id"], CONTAINER_WRITE))
    queue = QueueClient.from_connection_string(app.azurite.connection_string, app.runtime.settings.containment_queue,
                                               message_decode_policy=TextBase64DecodePolicy())
    [message] = queue.peek_messages()
    request = json.loads(message.content)
    assert set(request) == {"key", "resource_id", "plan_sha256", "claim_etag", "spend"}
    assert len(message.content.encode()) < MAX_REQUEST_BYTES
    assert request["plan_sha256"] == plan_digest([{"action": "make_container_private", "target": public["id"]}])


def test_an_oversized_request_is_refused_unread(app):
    app.configure(**SETTINGS)
    app.runtime.queue.send_message(json.dumps({"key": "k" * MAX_REQUEST_BYTES, "resource_id": "r", "plan": []}))
    app.drain()
    [record] = app.records()
    assert record.outcome == "rejected" and f"at most {MAX_REQUEST_BYTES}" in record.reason


def rotation(key: str, findings: list[dict], decided_at: str = "2026-11-24T12:00:00Z") -> DecisionRecord:
    """A claimed decision to rotate the account's keys, with the findings that called for it."""
    step = {"action": "rotate_account_keys", "target": ACCOUNT["id"]}
    return DecisionRecord(key=key, resource_id=ACCOUNT["id"], outcome="contain", mode="enforce", reason="leaked key",
                          plan=[step], actions=[step["action"]], findings=findings, decided_at=decided_at)


def naming(*keys: str, resource_id: str = ACCOUNT["id"]) -> dict:
    return {"rule": "egress_key_or_sas_from_untrusted_network", "severity": "critical", "resource_id": resource_id,
            "summary": "a SAS in the wrong hands", "evidence": {"keys": list(keys)}}


OLD_KEYS = {"key1": "2026-06-01T08:00:00.0000000Z", "key2": "2026-06-01T08:00:00.0000000Z"}


def rotated(emulator) -> set[str]:
    times = emulator.arm.get(ACCOUNT["id"])["properties"]["keyCreationTime"]
    return {name for name, created in times.items() if created != OLD_KEYS[name]}


def carry(app, decision: DecisionRecord) -> DecisionRecord:
    _, claim = app.runtime.ledger.claim(decision)
    app.runtime.queue.send_message(ContainmentRequest.of(decision, claim.etag).to_message())
    app.drain()
    [record] = [r for r in app.records() if r.key == decision.key]
    return record


def test_only_the_key_the_findings_name_is_rotated_and_a_lost_answer_never_rotates_it_twice(app, emulator):
    """A SAS signed with key1 leaked: key1 is rotated, key2 (which the pipeline may use) is
    not; the answer to the rotation is lost, and the retry sees key1 newer than the decision
    and leaves it (and key2) alone."""
    emulator.seed([b.storage_account(keyCreationTime=OLD_KEYS)])
    app.configure(**SETTINGS)
    lost = emulator.faults.add("drop", path="regenerateKey$", method="POST", after=True)
    record = carry(app, rotation("leak", [naming("key1"), naming("key1", resource_id=PUBLIC["id"])]))
    assert lost.fired == 1 and record.outcome == "contained"
    assert rotated(emulator) == {"key1"}
    assert len([p for m, p, _ in emulator.applied_writes if p.lower().endswith("regeneratekey")]) == 1


def test_the_findings_on_the_account_name_the_union_and_one_that_names_none_rotates_both(app, emulator):
    emulator.seed([b.storage_account(keyCreationTime=OLD_KEYS)])
    app.configure(**SETTINGS)
    carry(app, rotation("union", [naming("key2"), naming("key2")]))
    assert rotated(emulator) == {"key2"}
    emulator.seed([b.storage_account(keyCreationTime=OLD_KEYS)])
    carry(app, rotation("unknown", [naming("key2"), naming()]))
    assert rotated(emulator) == {"key1", "key2"}


def test_a_key_rotated_since_the_decision_is_not_rotated_again_nor_is_the_other(app, emulator):
    emulator.seed([b.storage_account(keyCreationTime={**OLD_KEYS, "key1": "2026-11-24T12:30:00.0000000Z"})])
    app.configure(**SETTINGS)
    record = carry(app, rotation("late", [naming("key1")]))
    # Nothing left to rotate: contained already, nothing changed, and the record says so.
    assert (record.outcome, record.after == record.before) == ("contained", True)
    assert record.reason.endswith("(already contained when the request ran)")
    assert [p for m, p, _ in emulator.applied_writes if p.lower().endswith("regeneratekey")] == []


def test_an_approval_rotates_the_keys_created_before_the_leak_not_before_the_approval(app, emulator):
    """A second decision on one leak, approved after the first rotated both keys: what leaked
    is what existed when the keys were listed (the finding's eventTime), so the keys rotated
    since, before this approval, are left alone."""
    since = {"key1": "2026-11-24T11:00:00.0000000Z", "key2": "2026-11-24T11:00:00.0000000Z"}
    emulator.seed([b.storage_account(keyCreationTime=since)])
    app.configure(**SETTINGS)
    listing = {**naming("key1", "key2"), "evidence": {"keys": ["key1", "key2"],
                                                      "eventTime": "2026-11-24T10:05:00.000000Z"}}
    approved = replace(rotation("second.approved", [listing], decided_at="2026-11-24T12:00:00.000000Z"),
                       operation="approval", event_time="2026-11-24T10:05:00.000000Z")
    carry(app, approved)
    assert [p for m, p, _ in emulator.applied_writes if p.lower().endswith("regeneratekey")] == []


def test_a_step_that_carries_its_keys_rotates_those_alone(app, emulator):
    emulator.seed([b.storage_account(keyCreationTime=OLD_KEYS)])
    app.configure(**SETTINGS)
    decision = rotation("left", [naming("key1", "key2")])
    carry(app, replace(decision, plan=[{**decision.plan[0], "keys": ["key2"]}]))
    assert rotated(emulator) == {"key2"}


def test_a_request_refused_after_taking_the_claim_gives_it_back_and_the_budget_too(app, emulator):
    """The first delivery takes the claim and spends the budget before it has read the claim
    (one round trip): a request whose plan then proves not to be the claim's is refused on the
    record, the claim is put back `queued` and the budget given back, so the genuine request
    that follows contains, spending once."""
    emulator.seed([ACCOUNT, PUBLIC])
    app.configure(**SETTINGS)
    app.deliver(write_event(PUBLIC["id"], CONTAINER_WRITE))
    received = app.runtime.queue.receive_message()
    app.runtime.queue.delete_message(received)
    genuine = base64.b64decode(received.content)  # the host's encoding (messageEncoding: base64)
    request = ContainmentRequest.from_message(genuine)
    widened = replace(request, plan_sha256=plan_digest([{"action": "rotate_account_keys", "target": ACCOUNT["id"]}]))
    app.runtime.queue.send_message(widened.to_message())
    app.drain()
    claim = app.runtime.ledger.get_claim(request.key, PUBLIC["id"])
    assert (claim.state, claim.holder, claim.spent) == ("queued", "", False)
    budget = json.loads(app.runtime.ledger.table.get_entity("budget", "containment")["per_minute"])
    assert sum(budget.values()) == 0 and container_access(emulator) == "Container"
    app.runtime.queue.send_message(request.to_message())
    app.drain()
    assert sorted(r.outcome for r in app.records()) == ["contained", "rejected"]
    budget = json.loads(app.runtime.ledger.table.get_entity("budget", "containment")["per_minute"])
    assert sum(budget.values()) == 1 and container_access(emulator) == "None"
