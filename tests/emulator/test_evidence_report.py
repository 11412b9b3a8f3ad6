"""The Markdown evidence report says what led to each decision, in words, and never `None`."""
from __future__ import annotations

from containment.core.records import DecisionRecord
from localazure.evidence_report import render

CONTAINER = ("/subscriptions/0b1f6471-1bf0-4dda-aec3-111122223333/resourceGroups/rg-synthetic/providers/"
             "Microsoft.Storage/storageAccounts/synthtrain01/blobServices/default/containers/training")
OPERATOR = {"object_id": "7e6d5c4b-3a29-4817-9f6e-5d4c3b2a1909", "name": "second-oncall@contoso.example",
            "roles": ["Containment.Approve"], "identity_provider": "aad"}


def lines(**fields) -> list[str]:
    record = DecisionRecord(**{"key": "k", "resource_id": CONTAINER, "outcome": "contained", "mode": "enforce",
                               "reason": "r", "decided_at": "2026-11-24T10:00:05.000000Z", **fields})
    return render("one", {}, [record], {}).splitlines()


def test_an_event_is_named_with_its_operation_and_time():
    assert "- Event: `e-1` (Microsoft.Storage/storageAccounts/blobServices/containers/write), at " \
           "2026-11-24T10:00:04.000000Z" in lines(event_id="e-1", event_time="2026-11-24T10:00:04.000000Z",
                                                  operation="Microsoft.Storage/storageAccounts/blobServices/"
                                                            "containers/write", actor={"name": "Dana Analyst"})


def test_a_persons_request_names_the_person_and_the_event_it_settles():
    assert "- Operator request (approval) by second-oncall@contoso.example, about event `e-1`" in lines(
        event_id="e-1", operation="approval", actor=OPERATOR)
    assert "- Operator request (break-glass) by second-oncall@contoso.example" in lines(
        operation="break-glass", actor=OPERATOR)
    assert "- Operator request by second-oncall@contoso.example" in lines(  # refused before it was understood
        operation="operator-request", outcome="rejected", actor=OPERATOR)
    assert "- Operator request (incident assessment) by second-oncall@contoso.example" in lines(
        operation="incident", incident_update={"kind": "assessment"}, actor=OPERATOR)


def test_the_scan_and_the_sweep_are_named_and_a_record_without_a_source_gets_no_line():
    assert "- Found by the egress scan of the window ending 2026-11-24T14:05:00.000000Z" in lines(
        operation="egress_scan", event_time="2026-11-24T14:05:00.000000Z")
    assert "- Found by the drift sweep at 2026-11-24T10:00:05.000000Z" in lines(
        operation="drift_sweep", actor={"name": "drift sweep"})
    unsourced = lines(outcome="rejected")  # a queue message nobody could read: no event, no person
    assert not [line for line in unsourced if line.startswith(("- Event", "- Found", "- Operator"))]
    assert "None" not in "\n".join(unsourced)
