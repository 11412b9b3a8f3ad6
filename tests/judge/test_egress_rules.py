"""The egress rules (containment.judge.egress): one account's blob reads in one scan window,
one row per caller as the egress_window query returns them, judged against the settings
and each caller's baseline. Every rule the family declares has a case here."""
from __future__ import annotations

import hashlib
import json

import pytest

from containment.judge import egress as family
from containment.judge.egress import ARRIVAL, MB, TABLE, VAULT_KEYS
from containment.judge.rule import Context
from containment.judge.scope import Protection
from containment.plan.registry import judge
from tests.helpers import arm_bodies as b
from tests.helpers.settings import load_settings

ACCOUNT_ID = b.storage_account()["id"]
SETTINGS = load_settings({"CONTAINMENT_ALLOWED_CIDRS": "10.20.0.0/16", "CONTAINMENT_EGRESS_ENUMERATION_BLOBS": "100",
                          "CONTAINMENT_EGRESS_NEW_CALLER_MB": "512", "CONTAINMENT_EGRESS_VOLUME_FLOOR_MB": "1024",
                          "CONTAINMENT_EGRESS_VOLUME_SIGMAS": "4"})


def caller(name: str = "oid:pipeline", *, megabytes: float = 1, blobs: int = 1, anonymous: int = 0,
           key_or_sas: int = 0, addresses: tuple[str, ...] = ("10.20.1.4",)) -> dict:
    return {"ResourceId": ACCOUNT_ID.lower(), "Caller": name, "Bytes": int(megabytes * MB), "Blobs": blobs,
            "Requests": blobs, "AnonymousRequests": anonymous, "KeyOrSasRequests": key_or_sas,
            "Addresses": list(addresses), "SampleUris": [f"https://synthtrain01.blob.core.windows.net/d/{n}"
                                                         for n in range(min(blobs, 12))],
            "AuthenticationTypes": ["Anonymous" if anonymous else "SAS" if key_or_sas else "OAuth"]}


def canary_read(name: str = "10.20.1.4", canary: str = "/synthtrain01/d/customers.parquet") -> dict:
    """A row of the egress_canary query: one canary read by one caller from one address."""
    return {"ResourceId": ACCOUNT_ID.lower(), "Canary": canary, "Caller": name, "Address": "10.20.1.4",
            "AuthenticationType": "SAS", "Requests": 1, "Operations": ["GetBlob"],
            "FirstRead": "2026-11-24T11:46:00Z", "LastRead": "2026-11-24T11:46:00Z"}


SAS_HASH = "04D64C2B3A704145C9F1664F201123467A74D72DA72751A9137DDAA732FA03CF"


def signed(row: dict, keys=("key1",), sas=(SAS_HASH,), violations: int = 0) -> dict:
    """A caller row with the credential columns the window query parses from AuthenticationHash."""
    statuses = ["Policy violated (SAS expiry greater than the SAS policy's sasExpirationPeriod)"] if violations else []
    return {**row, "Keys": [*keys, ""], "SasSignatures": [*sas, ""], "SasPolicyViolations": violations,
            "SasExpiryStatuses": ["", *statuses]}


def copy(destination: str = "scratch01", protected: bool = False, side: str = "destination",
         keys: tuple[str, ...] = ()) -> dict:
    """A row of the egress_copy query, marked by the scan with whether its destination is protected."""
    return {"ResourceId": ACCOUNT_ID.lower(), "Operation": "PutBlockFromURL" if side == "destination" else "GetBlob",
            "Side": side, "SourceAccount": "synthtrain01", "DestinationAccount": destination, "Caller": "oid:azcopy",
            "Requests": 4, "Objects": ["/synthtrain01/d/a.parquet"],
            "SourceUris": ["https://synthtrain01.blob.core.windows.net/d/a.parquet?sp=r&sig=abc%3D"],
            "DestinationUris": [], "UserAgents": ["AzCopy/10.27.0"], "RequesterTenants": ["t-1"],
            "AuthenticationTypes": ["OAuth"], "Keys": list(keys), "SasSignatures": [],
            "FirstCopy": "2026-11-24T11:46:00Z", "LastCopy": "2026-11-24T11:47:00Z",
            "DestinationProtected": protected, "ForeignTenants": []}


def findings(*callers: dict, baseline: dict | None = None, canary_reads: tuple[dict, ...] = (),
             copies: tuple[dict, ...] = ()):
    activity = {"id": ACCOUNT_ID, "window": {"start": "2026-11-24T11:45:00Z", "end": "2026-11-24T11:50:00Z"},
                "callers": list(callers), "canary_reads": list(canary_reads), "copies": list(copies)}
    context = Context(SETTINGS, Protection(tagged=True, protected_scope=None), {"baseline": baseline or {}})
    return judge(TABLE, activity, context)


def history(name: str, mean_mb: float, stddev_mb: float) -> dict:
    return {(ACCOUNT_ID.lower(), name): {"Mean": mean_mb * MB, "StdDev": stddev_mb * MB, "ActiveWindows": 200}}


CASES = {
    "egress_anonymous_read": (caller("anonymous", anonymous=3, addresses=("203.0.113.9",)), "critical",
                              "3 anonymous blob reads by 1 caller(s) in the window"),
    "egress_key_or_sas_from_untrusted_network": (
        caller("sas:0x1f", key_or_sas=5, addresses=("198.51.100.7",)), "critical",
        "SAS or account-key reads from 1 address(es) outside CONTAINMENT_ALLOWED_CIDRS: a key or SAS is in the "
        "wrong hands"),
    "egress_volume_anomaly": (caller("oid:new-reader", megabytes=600), "high",
                              "1 caller(s) read 0.59 GiB, above their thresholds, in one window"),
    "egress_bulk_enumeration": (caller(blobs=101), "medium",
                                "1 caller(s) read more than 100 distinct blobs in one window"),
    # A canary read is a row of its own query; the training network's caller reads only the canary here.
    "egress_canary_read": (canary_read(), "critical",
                           "canary blob(s) /synthtrain01/d/customers.parquet read by 1 caller(s): no job reads a canary"),
    # From the allowed network: only the policy is broken.
    "egress_sas_expiry_policy_violated": (
        signed(caller("10.20.1.4", key_or_sas=2), violations=2), "medium",
        "2 read(s) by 1 caller(s) with a SAS that violates the account's SAS expiration policy"),
    "egress_copy_out_of_scope": (copy(), "critical", "blobs copied to scratch01, outside the protected accounts"),
}


def test_every_egress_rule_has_a_case_here():
    # The window rules here; the arrival and vault key rules below, on rows of their own queries.
    assert {rule.id for rule in family.RULES if rule.resource_type == TABLE} == set(CASES)
    assert {rule.id for rule in family.RULES if rule.resource_type != TABLE} == {
        "egress_logs_stopped", "key_vault_key_use_by_unexpected_caller"}


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_each_rule_finds_its_signal_and_nothing_else(rule_id):
    row, severity, summary = CASES[rule_id]
    [found] = (findings(canary_reads=(row,)) if "Canary" in row else findings(copies=(row,)) if "Side" in row
               else findings(row))
    assert (found.rule, found.severity, found.summary, found.resource_id) == (rule_id, severity, summary, ACCOUNT_ID)
    assert [c["Caller"] for c in found.evidence["callers"]] == [row["Caller"]]


def test_canary_reads_are_named_each_and_grouped_by_caller():
    rows = (canary_read("10.20.1.4"), canary_read("10.20.1.4", canary="/synthtrain01/d/b.csv"), canary_read("oid:x"))
    [found] = findings(caller(), canary_reads=rows)
    assert found.rule == "egress_canary_read" and found.evidence["caller_count"] == 2
    assert found.evidence["canaries"] == ["/synthtrain01/d/b.csv", "/synthtrain01/d/customers.parquet"]
    assert len(found.evidence["reads"]) == 3 and found.evidence["requests"] == 3
    [training] = [c for c in found.evidence["callers"] if c["Caller"] == "10.20.1.4"]
    assert training["Canaries"] == ["/synthtrain01/d/b.csv", "/synthtrain01/d/customers.parquet"]


def test_a_sas_from_an_unknown_network_names_the_key_that_signed_it_and_its_hash_never_the_sas():
    row = {**signed(caller("198.51.100.7", key_or_sas=3, addresses=("198.51.100.7",))),
           "SampleUris": ["https://synthtrain01.blob.core.windows.net/d/a?sv=2025-01-05&st=2026-11-24T10%3A00%3A00Z"
                          "&se=2026-12-24T10%3A00%3A00Z&sr=b&sp=rl&sig=c2VjcmV0%3D"]}
    [found] = findings(row)
    assert (found.evidence["keys"], found.evidence["sas_signatures"]) == (["key1"], [SAS_HASH])
    [named] = found.evidence["callers"]
    assert (named["Keys"], named["SasSignatures"]) == (["key1"], [SAS_HASH])
    assert named["SasGrants"] == [{"sv": "2025-01-05", "st": "2026-11-24T10:00:00Z", "se": "2026-12-24T10:00:00Z",
                                   "sr": "b", "sp": "rl", "lifetime_hours": 720.0}]
    assert "c2VjcmV0" not in json.dumps(found.evidence) + json.dumps(found.detail)  # the signature, redacted


def test_an_account_key_read_names_its_key_and_no_sas_and_two_callers_name_the_union():
    one = signed(caller("198.51.100.7", key_or_sas=1, addresses=("198.51.100.7",)), keys=("key2",), sas=())
    two = signed(caller("203.0.113.5", key_or_sas=1, addresses=("203.0.113.5",)), keys=("key1",))
    [found] = findings(one, two)
    assert (found.evidence["keys"], found.evidence["sas_signatures"]) == (["key1", "key2"], [SAS_HASH])


def test_a_key_beside_a_sas_whose_hash_names_no_key_is_not_named_alone():
    one = signed(caller("198.51.100.7", key_or_sas=1, addresses=("198.51.100.7",)), keys=("key1",))
    two = {**caller("203.0.113.5", key_or_sas=2, addresses=("203.0.113.5",)), "UnknownKeyRequests": 2}
    [found] = findings(one, two)
    assert found.evidence["keys"] == [] and found.evidence["sas_signatures"] == [SAS_HASH]  # rotation: both


def test_credentials_keep_only_key_names_and_hexadecimal_hashes_ten_at_most():
    rows = [{"Keys": ["key1", "key3", "", None], "SasSignatures": [f"{n:064X}" for n in range(12)] + ["not-hex", ""]}]
    named = family.credentials(rows)
    assert named["keys"] == ["key1"] and len(named["sas_signatures"]) == family.SAS_SIGNATURES


def test_a_sas_that_violates_the_policy_from_an_unknown_network_is_both_findings():
    row = signed(caller("198.51.100.7", key_or_sas=2, addresses=("198.51.100.7",)), violations=2)
    found = {f.rule: f for f in findings(row)}
    assert set(found) == {"egress_key_or_sas_from_untrusted_network", "egress_sas_expiry_policy_violated"}
    violated = found["egress_sas_expiry_policy_violated"].evidence
    assert violated["keys"] == ["key1"] and violated["callers"][0]["SasExpiryStatuses"][0].startswith("Policy violated")


def test_a_sas_within_the_policy_is_no_finding():
    assert findings(signed(caller("10.20.1.4", key_or_sas=2))) == []


def test_a_copy_to_a_protected_account_or_to_no_named_destination_is_no_finding():
    assert findings(copies=(copy(protected=True), copy(destination=""))) == []


def test_a_copy_tools_read_naming_no_destination_is_out_of_scope_only_by_a_foreign_tenant():
    home = {**copy(destination="", side="source"), "Operation": "GetBlob"}
    assert findings(copies=(home,)) == []
    [found] = findings(copies=({**home, "ForeignTenants": ["9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f"]},))
    assert found.evidence["destinations"] == ["another tenant (9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f)"]


def test_a_copy_whose_destination_uri_names_no_account_or_the_scan_could_not_resolve_is_out_of_scope():
    nameless = {**copy(destination="", side="source"), "DestinationUris": ["https://cdn.contoso.example/d?sig=s"]}
    unlisted = {**copy(protected=False, side="source"), "Unresolved": "the storage accounts could not be listed"}
    [found] = findings(copies=(nameless, unlisted))
    unknown, named = found.evidence["copies"]  # by destination account: none first
    assert unknown["Destination"] == "an account no storage endpoint names (cdn.contoso.example)"
    assert "names no storage account" in unknown["Unresolved"] and "fail closed" in named["Unresolved"]
    assert all("sig=s" not in uri for uri in unknown["DestinationUris"])


def test_a_copy_out_of_scope_names_the_sources_keys_not_the_destinations():
    [found] = findings(copies=(copy(keys=("key2",)), copy("exfil99", side="source", keys=("key1",))))
    assert found.evidence["destinations"] == ["exfil99", "scratch01"]
    assert found.evidence["keys"] == ["key1"]  # the destination's row carries the destination's key
    assert all("abc%3D" not in uri for c in found.evidence["copies"] for uri in c["SourceUris"])
    assert found.evidence["callers"] == [{"Caller": "oid:azcopy"}, {"Caller": "oid:azcopy"}]


def test_ordinary_training_reads_are_no_finding():
    assert findings(caller(), caller("oid:eval", megabytes=100, blobs=50)) == []


def test_a_key_or_sas_from_an_allowed_network_is_no_finding():
    assert findings(caller("sas:0x1f", key_or_sas=5, addresses=("10.20.7.7",))) == []


def test_a_known_caller_is_judged_against_its_own_baseline_and_the_floor():
    usual = history("oid:pipeline", mean_mb=900, stddev_mb=50)
    assert findings(caller(megabytes=1090), baseline=usual) == []  # under mean + 4 sigma (1100 MB)
    [found] = findings(caller(megabytes=1200), baseline=usual)
    assert found.evidence["callers"][0]["threshold_bytes"] == 1100 * MB
    quiet = history("oid:pipeline", mean_mb=1, stddev_mb=1)
    assert findings(caller(megabytes=1000), baseline=quiet) == []  # never below the floor (1024 MB)


def test_evidence_keeps_samples_not_the_whole_log():
    [found] = findings(caller(blobs=500))
    assert len(found.evidence["callers"][0]["SampleUris"]) == family.SAMPLE_URIS
    assert len(found.detail["callers"][0]["SampleUris"]) == 12  # the full evidence: as the query gave them


def digest_of(full: dict) -> str:
    """SHA-256 of canonical JSON (sorted keys, no spaces), as the README tells an auditor to check it."""
    return "sha256:" + hashlib.sha256(json.dumps(full, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def test_four_hundred_anonymous_callers_are_counted_whole_and_named_by_the_top_ten():
    uri = "https://synthtrain01.blob.core.windows.net/d/"
    crowd = [{**caller(f"2001:db8::{n:x}", megabytes=1 + n / 100, blobs=2, anonymous=2, addresses=(f"2001:db8::{n:x}",)),
              "SampleUris": [f"{uri}train-0", f"{uri}shard-{n}"]} for n in range(400)]
    [found] = findings(*crowd)
    evidence = found.evidence
    assert (evidence["caller_count"], evidence["requests"]) == (400, 800)
    assert evidence["bytes"] == sum(c["Bytes"] for c in crowd)
    assert [c["Caller"] for c in evidence["callers"]] == [f"2001:db8::{n:x}" for n in range(399, 389, -1)]  # most bytes
    assert len(evidence["sampled_objects"]) == family.TOP_OBJECTS
    assert evidence["sampled_objects"][:2] == [{"object": "d/train-0", "callers": 400},  # every caller read it
                                               {"object": "d/shard-399", "callers": 1}]  # then by its callers' bytes
    assert len(found.detail["callers"]) == 400 and evidence["digest"] == digest_of(found.detail)
    assert len(json.dumps(evidence)) < 8_000
    [again] = findings(*reversed(crowd))  # Log Analytics promises no order of rows
    assert again.evidence == evidence


def test_a_uri_of_forty_thousand_characters_is_cut_in_the_finding_and_whole_in_its_full_evidence():
    long_uri = "https://synthtrain01.blob.core.windows.net/d/" + "x" * 40_000 + "?sv=2025-01-05&sig=REDACTED"
    row = {**caller("198.51.100.20", anonymous=1, addresses=("198.51.100.20",)), "SampleUris": [long_uri]}
    [found] = findings(row)
    [kept] = found.evidence["callers"][0]["SampleUris"]
    assert kept.startswith(long_uri[:family.URI_CHARACTERS]) and kept.endswith(
        f"... [{len(long_uri) - family.URI_CHARACTERS} more]")
    assert found.evidence["sampled_objects"][0]["object"].startswith("d/xxx")  # the path, never the SAS
    assert found.detail["callers"][0]["SampleUris"] == [long_uri] and found.evidence["digest"] == digest_of(found.detail)


def test_a_sas_signature_in_a_sample_uri_never_reaches_the_evidence():
    leaked = "https://synthtrain01.blob.core.windows.net/d/part-0?sv=2025-01-05&se=2026-12-01&sp=r&sig=c2VjcmV0JTNE"
    from_outside = {**caller("192.0.2.7", key_or_sas=1, addresses=("192.0.2.7",)), "SampleUris": [leaked]}
    [finding] = findings(from_outside)
    kept = json.dumps({"evidence": finding.evidence, "detail": finding.detail})
    assert "c2VjcmV0JTNE" not in kept and "sig=REDACTED" in kept and "sp=r" in kept


# -- whether a protected account's logs arrive (rows of egress_arrival.kql) --------------------------
CHECKED = "2026-11-24T12:00:00.000000Z"


def arrival(last_arrival: str | None, rows: int = 0, created: str | None = "2026-01-05T08:00:00.0000000Z",
            **settings: str):
    body = {"id": ACCOUNT_ID, "checked_at": CHECKED, "rows": rows, "last_row": last_arrival,
            "last_arrival": last_arrival, "created": created}
    context = Context(load_settings(settings), Protection(tagged=True, protected_scope=None))
    return judge(ARRIVAL, body, context)


def test_logs_that_arrived_within_the_silence_allowed_are_no_finding():
    assert arrival("2026-11-23T12:00:00.000001Z", rows=40) == []  # 23 h 59 min ago: within the 24 hours


def test_logs_silent_for_the_silence_allowed_are_a_high_weakness_naming_the_last_arrival():
    [found] = arrival("2026-11-23T12:00:00Z", rows=40)
    assert (found.rule, found.severity, found.weakness, found.resource_id) == (
        "egress_logs_stopped", "high", True, ACCOUNT_ID)
    assert found.summary == ("no StorageBlobLogs row has arrived for 24 hours (CONTAINMENT_LOG_SILENCE_HOURS is 24): "
                             "the egress scan is blind to this account")
    assert (found.evidence["arrival"], found.evidence["last_arrival"], found.evidence["rows_in_lookback"]) == (
        "stopped", "2026-11-23T12:00:00Z", 40)
    assert arrival("2026-11-23T12:00:00Z", rows=40, CONTAINMENT_LOG_SILENCE_HOURS="25") == []


def test_an_account_with_no_row_in_the_lookback_is_said_apart_and_only_once_old_enough():
    [found] = arrival(None)
    assert found.rule == "egress_logs_stopped" and found.evidence["arrival"] == "none in the lookback"
    assert found.summary.startswith("no StorageBlobLogs row in the 7-day lookback: this account's logs have never "
                                    "arrived in this workspace")
    assert arrival(None, created="2026-11-23T13:00:00Z") == []  # 23 hours old: not missed yet
    assert arrival(None, created=None) == []  # of no known age (ARM sets creationTime: a hand-written body)


# -- key operations on a vault holding a protected account's customer-managed key -----------------
VAULT_ID = f"/subscriptions/{b.SUBSCRIPTION}/resourceGroups/{b.RG}/providers/Microsoft.KeyVault/vaults/kv-synthkeys01"
ACCOUNT_MI = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b"
PIPELINE = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
STRANGER = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"


def use(object_id: str | None, address: str = "10.20.1.4", key: str = "synthtrain01-cmk",
        operations: tuple[str, ...] = ("KeyUnwrap",)) -> dict:
    """A row of the egress_vault_keys query."""
    return {"ResourceId": VAULT_ID.lower(), "VaultHost": "kv-synthkeys01.vault.azure.net", "Key": key,
            "Caller": object_id or address, "ObjectId": object_id or "", "AppId": "", "Upn": "", "Address": address,
            "Requests": 3, "Operations": list(operations), "FirstUse": "2026-11-24T11:46:00Z",
            "LastUse": "2026-11-24T11:48:00Z", "UserAgents": ["azsdk-python-keyvault-keys/4.10.0"]}


def key_uses(*uses: dict, **settings: str):
    body = {"id": VAULT_ID.lower(), "vault_host": "kv-synthkeys01.vault.azure.net", "uses": list(uses),
            "keyed": [{"account": ACCOUNT_ID, "key": "synthtrain01-cmk", "identities": (ACCOUNT_MI,)}]}
    context = Context(load_settings({"CONTAINMENT_ALLOWED_CIDRS": "10.20.0.0/16",
                                     "CONTAINMENT_ALLOWED_PRINCIPALS": PIPELINE, **settings}),
                      Protection(tagged=True, protected_scope=None))
    return judge(VAULT_KEYS, body, context)


def test_the_accounts_own_identity_and_an_allowed_principal_inside_the_allowed_networks_are_no_finding():
    # The Storage service unwraps the key itself from Azure's addresses: its identity is judged alone.
    assert key_uses(use(ACCOUNT_MI, address="52.236.186.210", operations=("KeyGet", "KeyUnwrap", "KeyWrap")),
                    use(PIPELINE, address="10.20.7.9")) == []


def test_a_stranger_unwrapping_the_key_is_a_critical_exposure_naming_caller_address_key_and_account():
    [found] = key_uses(use(STRANGER, address="203.0.113.50", operations=("KeyUnwrap", "KeyDecrypt")))
    assert (found.rule, found.severity, found.weakness, found.resource_id) == (
        "key_vault_key_use_by_unexpected_caller", "critical", False, VAULT_ID.lower())
    assert found.summary.startswith("KeyDecrypt, KeyUnwrap on key(s) synthtrain01-cmk of "
                                    "kv-synthkeys01.vault.azure.net by 1 unexpected caller(s)")
    [caller] = found.evidence["callers"]
    assert (caller["ObjectId"], caller["Address"], caller["Key"], caller["Accounts"], caller["Requests"]) == (
        STRANGER, "203.0.113.50", "synthtrain01-cmk", [ACCOUNT_ID], 3)
    assert (caller["FirstUse"], caller["LastUse"]) == ("2026-11-24T11:46:00Z", "2026-11-24T11:48:00Z")
    assert caller["why"] == ["identity not allowed", "address outside CONTAINMENT_ALLOWED_CIDRS"]
    assert found.evidence["accounts"] == [ACCOUNT_ID] and found.evidence["digest"] == digest_of(found.detail)


def test_an_allowed_principal_from_outside_the_allowed_networks_and_an_anonymous_row_are_findings():
    [found] = key_uses(use(PIPELINE, address="198.51.100.7"), use(None, address="10.20.1.4"))
    assert [c["why"] for c in found.evidence["callers"]] == [["no identity in the log"],  # by caller: its address
                                                             ["address outside CONTAINMENT_ALLOWED_CIDRS"]]


def test_the_accounts_identity_on_another_key_of_the_vault_and_an_expired_allowance_are_findings():
    [found] = key_uses(use(ACCOUNT_MI, address="52.236.186.210", key="another-key"),
                       CONTAINMENT_ALLOWED_PRINCIPALS=f"{PIPELINE}@2026-11-23")
    [caller] = found.evidence["callers"]
    assert caller["Accounts"] == [] and caller["why"] == ["identity not allowed",
                                                          "address outside CONTAINMENT_ALLOWED_CIDRS"]
    [expired] = key_uses(use(PIPELINE), CONTAINMENT_ALLOWED_PRINCIPALS=f"{PIPELINE}@2026-11-23")
    assert expired.evidence["callers"][0]["why"] == [
        "identity not allowed (its CONTAINMENT_ALLOWED_PRINCIPALS entry expired 2026-11-24T00:00:00.000000Z)"]
