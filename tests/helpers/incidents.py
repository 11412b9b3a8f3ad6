"""Incidents built from decision records shaped as the app writes them (copied from what
`python -m containment replay` records for the scenarios named below), for the report's
tests and for looking at the report in a browser.

`incident_of` is the one place that calls Incident's constructor: when incidents.py becomes
cross-resource, only it changes.
"""
from __future__ import annotations

import copy

from containment.core.records import DecisionRecord
from containment.record.incidents import Incident
from tests.helpers import arm_bodies as b

ACCOUNT_ID = b.storage_account()["id"]
ROLE_ID = f"{ACCOUNT_ID}/providers/Microsoft.Authorization/roleAssignments/0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e01"
DANA = {"object_id": "8c9d0e1f-2a3b-4c5d-8e6f-7a8b9c0d1e2f", "app_id": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        "name": "Dana Analyst"}
OPERATOR = {"object_id": "5ce0a210-0000-4000-8000-0000000000ff", "name": "sec-oncall@contoso.example",
            "roles": ["Containment.Approve", "Containment.Release"], "identity_provider": "aad"}
PRIVACY_TAGS = {"data-classification": "synthetic", "team": "ml-platform", "synthetic-generator": "ctgan 0.10.1",
                "synthetic-source": "crm-customers-2025", "source-personal-data": "true",
                "data-owner": "ml-platform@contoso.example"}
SAS = ("?sv=2022-11-02&sr=c&sp=rl&st=2026-11-20T00:00:00Z&se=2026-12-31T00:00:00Z&spr=https"
       "&sig=REDACTED")


def incident_of(records: list[DecisionRecord], *, assessment: dict | None = None,
                incident_id: str = "inc-20261124-5034a3a0caf4") -> Incident:
    """The incident of these records, assessed as `assessment` says (written as the DPO's
    assessment record is: operation `incident`, the assessment in `incident_update`)."""
    ordered = sorted(records, key=lambda r: (r.decided_at or "", r.recorded_at))
    if assessment is not None:
        decided_by = assessment.get("decided_by") or {"id": "d0d0d0d0-1111-4222-8333-444455556666",
                                                       "name": "dpo@contoso.example"}
        at = assessment.get("decided_at") or "2026-11-25T08:00:00Z"
        update = {k: v for k, v in assessment.items() if k not in ("decided_by", "decided_at") and v is not None}
        ordered.append(DecisionRecord(
            key=f"incident-assess-{len(ordered)}", resource_id=ordered[0].resource_id, outcome="reported",
            mode=ordered[0].mode, reason=f"assessed: {assessment.get('reason')}", operation="incident",
            actor={"object_id": decided_by.get("id"), "name": decided_by.get("name")}, decided_at=at,
            recorded_at=f"{len(ordered) + 1:020d}", incident_update={"kind": "assessment", **update}))
    return Incident(incident_id, ordered)


def account(tags: dict | None = None, **properties) -> dict:
    body = b.storage_account(tags=PRIVACY_TAGS if tags is None else tags, allowBlobPublicAccess=True,
                             allowSharedKeyAccess=True, **properties)
    body["properties"]["networkAcls"] = {"bypass": "AzureServices", "defaultAction": "Allow",
                                         "ipRules": [{"value": "198.51.100.0/24", "action": "Allow"}],
                                         "virtualNetworkRules": []}
    return body


def _caller(address: str, first: str, last: str, blobs: int, size: int, auth: str = "SAS", sas: str = SAS,
            container: str = "train", **extra) -> dict:
    uris = [f"https://synthtrain01.blob.core.windows.net/{container}/part-{n:04d}.parquet{sas if auth == 'SAS' else ''}"
            for n in range(blobs)]
    return {"Caller": address, "Bytes": size * blobs, "Blobs": blobs, "Requests": blobs, "AuthenticationTypes": [auth],
            "Addresses": [address], "SampleUris": uris, "FirstRead": first, "LastRead": last, **extra}


def _window_finding(rule: str, severity: str, summary: str, callers: list[dict], start: str, end: str,
                    digest: str, keep: int = 3) -> dict:
    return {"rule": rule, "severity": severity, "resource_id": ACCOUNT_ID, "summary": summary, "evidence": {
        "caller_count": len(callers), "requests": sum(c["Requests"] for c in callers),
        "bytes": sum(c["Bytes"] for c in callers),
        "callers": [{**c, "SampleUris": c["SampleUris"][:keep]} for c in callers[:10]],
        "sampled_objects": [{"object": u.split(".net/", 1)[1].split("?")[0], "callers": 1}
                            for c in callers[:10] for u in c["SampleUris"][:keep]][:10],
        "digest": digest, "start": start, "end": end}}


def egress_sas_leak(*, reads_after: bool = False, tags: dict | None = None) -> list[DecisionRecord]:
    """scenarios/egress-leaked-sas-from-unknown-network.json: a service SAS for the train
    container used from 203.0.113.77 (outside CONTAINMENT_ALLOWED_CIDRS), 10 blobs, 0.62 GiB;
    network locked and user-delegation keys revoked at 14:15, key rotation held for a person.
    With reads_after, the same token reads again at 14:21 (the network lock did not reach it)."""
    body = account(tags)
    locked = copy.deepcopy(body)
    locked["properties"].update(allowBlobPublicAccess=False)
    locked["properties"]["networkAcls"]["defaultAction"] = "Deny"
    caller = _caller("203.0.113.77", "2026-11-24 14:01:12+00:00", "2026-11-24 14:03:48+00:00", 10, 64 * 1024 ** 2,
                     KeyOrSasRequests=10, untrusted_addresses=["203.0.113.77"])
    first = DecisionRecord(
        key="egress-20261124T1400-754c7ddb1ae5b78e3bbb", resource_id=ACCOUNT_ID, outcome="contained",
        mode="enforce", operation="egress_scan",
        reason="contain egress_key_or_sas_from_untrusted_network, egress_volume_anomaly; held for approval: "
               "rotate_account_keys waits for a person (CONTAINMENT_APPROVAL_ACTIONS)",
        actions=["disable_blob_public_access", "lock_account_network", "revoke_user_delegation_keys"],
        plan=[{"action": a, "target": ACCOUNT_ID} for a in
              ("disable_blob_public_access", "lock_account_network", "revoke_user_delegation_keys")],
        awaiting_approval=[{"action": "rotate_account_keys", "target": ACCOUNT_ID}],
        rules=["egress_key_or_sas_from_untrusted_network", "egress_volume_anomaly"], severity="critical",
        findings=[
            _window_finding("egress_key_or_sas_from_untrusted_network", "critical",
                            "SAS or account-key reads from 1 address(es) outside CONTAINMENT_ALLOWED_CIDRS: a key "
                            "or SAS is in the wrong hands", [caller], "2026-11-24T14:00:00.000000Z",
                            "2026-11-24T14:05:00.000000Z", "sha256:5034a3a0"),
            _window_finding("egress_volume_anomaly", "high",
                            "1 caller(s) read 0.62 GiB, above their thresholds, in one window",
                            [{**{k: v for k, v in caller.items() if k not in ("KeyOrSasRequests",
                                                                               "untrusted_addresses")},
                              "threshold_bytes": 536870912, "baseline": "none: a new caller"}],
                            "2026-11-24T14:00:00.000000Z", "2026-11-24T14:05:00.000000Z", "sha256:1858d103")],
        full_evidence={"sha256:5034a3a0": {"callers": [caller]}},
        before={ACCOUNT_ID: body}, after={ACCOUNT_ID: locked},
        event_time="2026-11-24T14:05:00.000000Z", decided_at="2026-11-24T14:15:00.000000Z",
        contained_at="2026-11-24T14:15:00.000000Z", recorded_at="1")
    records = [first]
    if reads_after:
        again = _caller("203.0.113.77", "2026-11-24 14:21:02+00:00", "2026-11-24 14:21:40+00:00", 2,
                        64 * 1024 ** 2, KeyOrSasRequests=2, untrusted_addresses=["203.0.113.77"])
        records.append(DecisionRecord(
            key="egress-20261124T1420-754c7ddb1ae5b78e3bbb", resource_id=ACCOUNT_ID, outcome="reported",
            mode="enforce", operation="egress_scan",
            reason=f"already contained in this incident by decision {first.key}: nothing more to do",
            rules=["egress_key_or_sas_from_untrusted_network"], severity="critical",
            findings=[_window_finding("egress_key_or_sas_from_untrusted_network", "critical",
                                      "SAS or account-key reads from 1 address(es) outside CONTAINMENT_ALLOWED_CIDRS",
                                      [again], "2026-11-24T14:20:00.000000Z", "2026-11-24T14:25:00.000000Z",
                                      "sha256:77aa01")],
            full_evidence={"sha256:77aa01": {"callers": [again]}},
            event_time="2026-11-24T14:25:00.000000Z", decided_at="2026-11-24T14:35:00.000000Z", recorded_at="2"))
        records.append(DecisionRecord(
            key=f"{first.key}.not-holding", resource_id=ACCOUNT_ID, outcome="failed", mode="enforce",
            operation="egress_scan", severity="critical", rules=["egress_containment_not_holding"],
            reason=f"containment by decision {first.key} at {first.contained_at} is not holding: 1 caller(s) read "
                   f"blobs after {first.contained_at}",
            findings=[{"rule": "egress_containment_not_holding", "severity": "critical", "resource_id": ACCOUNT_ID,
                       "summary": f"1 caller(s) read blobs after {first.contained_at}",
                       "evidence": {"callers": [{"Caller": "203.0.113.77", "Requests": 2, "Bytes": 134217728,
                                                 "LastRead": "2026-11-24T14:21:40.000000Z"}],
                                    "start": "2026-11-24T14:20:00.000000Z", "end": "2026-11-24T14:25:00.000000Z"}}],
            event_time="2026-11-24T14:25:00.000000Z", decided_at="2026-11-24T14:35:00.000000Z", recorded_at="3"))
    return records


def anonymous_crowd(count: int = 400) -> list[DecisionRecord]:
    """scenarios/egress-400-anonymous-callers-in-one-window.json: one blob each, 8 MiB."""
    callers = [_caller(f"2001:db8:4c1e:0::{n:x}", "2026-11-24 14:00:00+00:00", "2026-11-24 14:04:10+00:00", 1,
                       8 * 1024 ** 2, auth="Anonymous", AnonymousRequests=1) for n in range(count)]
    for n, caller in enumerate(callers):
        caller["SampleUris"] = [f"https://synthtrain01.blob.core.windows.net/train/shard-{n:04d}.parquet"]
    return [DecisionRecord(
        key="egress-20261124T1400-754c7ddb1ae5b78e3bbb", resource_id=ACCOUNT_ID, outcome="contained", mode="enforce",
        operation="egress_scan", reason="contain egress_anonymous_read",
        actions=["disable_blob_public_access", "lock_account_network", "revoke_user_delegation_keys"],
        rules=["egress_anonymous_read"], severity="critical",
        findings=[_window_finding("egress_anonymous_read", "critical",
                                  f"{count} anonymous blob reads by {count} caller(s) in the window", callers,
                                  "2026-11-24T14:00:00.000000Z", "2026-11-24T14:05:00.000000Z", "sha256:aa00")],
        full_evidence={"sha256:aa00": {"callers": callers}}, before={ACCOUNT_ID: account()},
        event_time="2026-11-24T14:05:00.000000Z", decided_at="2026-11-24T14:15:00.000000Z",
        contained_at="2026-11-24T14:15:00.000000Z", recorded_at="1")]


def role_grant(*, approved: bool = False) -> list[DecisionRecord]:
    """scenarios/role-data-reader-to-unknown-principal.json: Dana Analyst grants Storage Blob
    Data Reader on synthtrain01 to an unknown service principal; the assignment is deleted six
    seconds later. The record holds the assignment's body, not the account's."""
    assignment = {
        "id": ROLE_ID, "name": "0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e01",
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": "/subscriptions/0b1f6471-1bf0-4dda-aec3-111122223333/providers/Microsoft.Authorization/"
                                "roleDefinitions/2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
            "principalId": "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b", "principalType": "ServicePrincipal",
            "scope": ACCOUNT_ID, "createdOn": "2026-11-24T09:59:58.1000000Z",
            "createdBy": "8c9d0e1f-2a3b-4c5d-8e6f-7a8b9c0d1e2f"}}
    finding = {"rule": "role_assignment_grants_data_access", "severity": "high", "resource_id": ROLE_ID,
               "summary": "ServicePrincipal 6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b holds Storage Blob Data Reader over "
                          "protected synthetic data (dataActions grant Microsoft.Storage/storageAccounts/blobServices/"
                          "containers/blobs/read)",
               "evidence": {"principalId": "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b", "principalType": "ServicePrincipal",
                            "roleDefinitionId": assignment["properties"]["roleDefinitionId"],
                            "roleName": "Storage Blob Data Reader", "scope": ACCOUNT_ID,
                            "data_paths": ["dataActions grant Microsoft.Storage/storageAccounts/blobServices/"
                                           "containers/blobs/read"],
                            "covers": [ACCOUNT_ID]}}
    event = dict(key="e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a01", resource_id=ROLE_ID, mode="enforce",
                 event_id="e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a01",
                 operation="Microsoft.Authorization/roleAssignments/write",
                 actions=["delete_role_assignment"], plan=[{"action": "delete_role_assignment", "target": ROLE_ID}],
                 rules=["role_assignment_grants_data_access"], severity="high", findings=[finding], actor=DANA,
                 before={ROLE_ID: assignment}, event_time="2026-11-24T09:59:58.200000Z",
                 decided_at="2026-11-24T10:00:04.000000Z", recorded_at="1")
    if not approved:
        return [DecisionRecord(**event, outcome="contained", reason="contain role_assignment_grants_data_access",
                               after={ROLE_ID: None}, contained_at="2026-11-24T10:00:04.000000Z")]
    held = DecisionRecord(**{**event, "awaiting_approval": event["plan"]}, outcome="pending-approval",
                          reason="contain role_assignment_grants_data_access: deleting a role assignment is reserved "
                                 "for a person (CONTAINMENT_ROLE_DELETION_APPROVAL_SCOPES)")
    approval = DecisionRecord(
        key=f"{event['key']}.approved", resource_id=ROLE_ID, outcome="contained", mode="enforce",
        reason=f"approved by {OPERATOR['name']}: decision {event['key']}", event_id=event["event_id"],
        operation="approval", actions=["delete_role_assignment"], rules=event["rules"], severity="high",
        findings=[finding], actor=OPERATOR, before={ROLE_ID: assignment}, after={ROLE_ID: None},
        event_time=event["event_time"], decided_at="2026-11-24T10:42:00.000000Z",
        contained_at="2026-11-24T10:42:00.000000Z", recorded_at="2")
    return [held, approval]


def public_container(*, metadata: dict | None = None, name: str = "training") -> list[DecisionRecord]:
    """scenarios/public-container-enforce.json: Dana Analyst sets a container to public
    read; it is made private four seconds later. The record holds the container's body (with
    its metadata), not the account's."""
    container = b.container(ACCOUNT_ID, name, "Container")
    if metadata is not None:
        container["properties"]["metadata"] = metadata
    private = copy.deepcopy(container)
    private["properties"]["publicAccess"] = "None"
    return [DecisionRecord(
        key="9a1e0c52-7f3d-4b6e-9d41-2c8f1a0b3e01", resource_id=container["id"], outcome="contained", mode="enforce",
        reason="contain storage_container_public_access", event_id="9a1e0c52-7f3d-4b6e-9d41-2c8f1a0b3e01",
        operation="Microsoft.Storage/storageAccounts/blobServices/containers/write", actions=["make_container_private"],
        plan=[{"action": "make_container_private", "target": container["id"]}],
        rules=["storage_container_public_access"], severity="high",
        findings=[{"rule": "storage_container_public_access", "severity": "high", "resource_id": container["id"],
                   "summary": "the container lets anyone read its blobs and the list of them without credentials",
                   "evidence": {"publicAccess": "Container"}}],
        actor=DANA, before={container["id"]: container},
        after={container["id"]: private}, event_time="2026-11-24T10:00:01.123456Z",
        decided_at="2026-11-24T10:00:05.000000Z", contained_at="2026-11-24T10:00:05.000000Z", recorded_at="1")]
