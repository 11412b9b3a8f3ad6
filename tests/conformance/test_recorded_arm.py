"""Every body recorded live in ../shared/recorded-arm loads as scenario resources, and the
app's whole path over it (the drift sweep judging everything, containment in enforce with
an IPv4 and IPv6 allowlist) makes only writes the emulator, so ARM, accepts."""
from __future__ import annotations

import json

import pytest

RECORDED = ("custodian-storage-account.json", "custodian-blob-containers.json", "custodian-nsg.json",
            "custodian-role-assignments.json")


def subscription_of(body: dict) -> str:
    first = body["value"][0] if "value" in body else body
    return first["id"].split("/")[2]


def test_every_recorded_file_is_replayed_here(shared):
    assert sorted(p.name for p in (shared / "recorded-arm").glob("*.json")) == sorted(RECORDED)


@pytest.mark.parametrize("name", RECORDED)
def test_a_recorded_body_is_swept_and_contained_with_writes_arm_accepts(app, emulator, shared, name):
    import function_app
    from localazure.functions_host import fire_timer

    body = json.loads((shared / "recorded-arm" / name).read_text())
    subscription = subscription_of(body)
    seeded = [body]
    if name == "custodian-blob-containers.json":  # containers need their account to be judged
        account_id = body["value"][0]["id"].split("/blobServices/")[0]
        seeded.insert(0, {"id": account_id, "name": account_id.rsplit("/", 1)[1],
                          "type": "Microsoft.Storage/storageAccounts", "location": "westus",
                          "properties": {"allowBlobPublicAccess": True}})
    emulator.seed(seeded)
    app.configure(CONTAINMENT_MODE="enforce", CONTAINMENT_SUBSCRIPTIONS=subscription,
                  CONTAINMENT_PROTECTED_SCOPES=f"/subscriptions/{subscription}",
                  CONTAINMENT_ALLOWED_CIDRS="10.20.0.0/16,2001:db8:20::/48", CONTAINMENT_MAX_ACTIONS_PER_HOUR="1000")
    assert fire_timer(function_app.app, "drift_sweep").error is None
    app.drain()
    records = app.records()
    assert records, "the sweep judged nothing"
    refused = [(w.method, w.url, w.status, w.response_body) for w in app.writes() if w.status >= 400]
    assert refused == []
    failed = [r.reason for r in records if r.outcome == "failed"]
    # The only failures allowed are built-in roles the emulator does not know (not ARM refusals).
    assert all("RoleDefinitionDoesNotExist" in reason for reason in failed), failed
