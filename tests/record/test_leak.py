"""What leaked, in words: the sentences a DPO reads first, and the structure behind them."""
from __future__ import annotations

import copy
from dataclasses import replace

from containment.record.leak import credential, describe
from tests.helpers import incidents as h


def told(records, **assessment) -> dict:
    return describe(h.incident_of(records, **assessment))


def test_a_leaked_sas_says_who_read_how_much_of_what_when_and_with_which_token():
    leak = told(h.egress_sas_leak())
    first = leak["sentences"][0]
    assert first == (
        "A caller from 203.0.113.77, outside the allowed networks, read 10 blobs (0.62 GiB in 10 requests) from "
        "synthtrain01/train between 14:01 and 14:03 UTC on 24 Nov 2026 using a service SAS (signed with an account "
        "key; for the container; allowing read, list; valid until 2026-12-31T00:00:00Z).")
    assert "REDACTED" not in " ".join(leak["sentences"]) and "sig=" not in " ".join(leak["sentences"])
    reads = leak["reads"]
    assert (reads["bytes"], reads["blobs"], reads["blobs_at_least"], reads["requests"]) == (671088640, 10, 10, 10)
    assert (reads["first_read"], reads["last_read"]) == ("2026-11-24T14:01:12Z", "2026-11-24T14:03:48Z")
    [caller] = reads["callers"]
    assert caller["identity"]["kind"] == "address" and caller["untrusted_addresses"] == ["203.0.113.77"]
    assert [s["kind"] for s in caller["credential"]["sas"]][0] == "a service SAS"
    assert leak["datasets"] == [{"account": "synthtrain01", "container": "train", "prefix": None,
                                 "basis": ["sampled reads"], "account_id": h.ACCOUNT_ID}]
    assert "synthtrain01/train/part-0000.parquet" in [o["object"] for o in reads["sampled_objects"]]


def test_key_rotation_still_waiting_is_said_beside_a_token_an_account_key_signed():
    leak = told(h.egress_sas_leak())
    assert leak["sentences"][-1].startswith("The account keys are not rotated yet: rotate_account_keys waits for "
                                            "approval since 14:15 UTC on 24 Nov 2026")


def test_no_read_after_containment_is_said_with_the_limit_of_what_was_scanned():
    after = told(h.egress_sas_leak())["after_containment"]
    assert after == {"contained_at": "2026-11-24T14:15:00Z", "continued": False, "callers": [], "decisions": [],
                     "weaknesses_only": False}
    assert ("No read by these callers was seen after containment at 14:15 UTC on 24 Nov 2026, in the logs scanned so "
            "far.") in told(h.egress_sas_leak())["sentences"]


def test_reads_after_containment_are_said_with_the_not_holding_record():
    leak = told(h.egress_sas_leak(reads_after=True))
    after = leak["after_containment"]
    assert after["continued"] is True and after["decisions"] == [
        "egress-20261124T1400-754c7ddb1ae5b78e3bbb.not-holding"]
    assert after["callers"] == [{"caller": "203.0.113.77", "requests": 2, "bytes": 134217728,
                                 "last_read": "2026-11-24T14:21:40Z"}]
    said = " ".join(leak["sentences"])
    assert ("Reads went on after containment at 14:15 UTC on 24 Nov 2026: 203.0.113.77 (2 requests, 128.0 MiB) read "
            "again, last at 14:21:40 UTC; the app recorded that the containment is not holding") in said
    # Two windows: a blob read in both counts twice in the logs' per-window counts.
    assert "read between 10 and 12 distinct blobs (0.75 GiB in 12 requests)" in said
    assert "between 14:01 and 14:21 UTC" in said


def test_reads_after_containment_are_found_in_the_logs_without_a_not_holding_record():
    records = [r for r in h.egress_sas_leak(reads_after=True) if not r.key.endswith(".not-holding")]
    after = told(records)["after_containment"]
    assert after["continued"] is True and after["callers"][0]["last_read"] == "2026-11-24T14:21:40Z"


def test_uncontained_reads_say_nothing_holds_them_back():
    [record] = h.egress_sas_leak()
    dry = replace(record, outcome="would-contain", mode="dry-run", contained_at=None, awaiting_approval=[])
    leak = told([dry])
    assert leak["after_containment"]["continued"] is None
    assert "The reads were not contained: nothing holds them back." in leak["sentences"]


def test_reads_only_a_weakness_named_are_not_called_uncontained_reads():
    """A SAS outliving its policy (egress_sas_expiry_policy_violated) names its reads, but shows no one
    who should not read the data reading it: the report does not say a leak goes uncontained."""
    [record] = h.egress_sas_leak()
    weak = [{**finding, "rule": "egress_sas_expiry_policy_violated", "severity": "medium", "weakness": True}
            for finding in record.findings]
    leak = told([replace(record, outcome="reported", findings=weak, contained_at=None, awaiting_approval=[])])
    assert leak["after_containment"]["weaknesses_only"] is True
    assert "The reads were not contained: nothing holds them back." not in leak["sentences"]
    assert any(sentence.startswith("The app contained nothing: its findings are weaknesses only")
               for sentence in leak["sentences"])


def test_a_crowd_of_anonymous_callers_is_one_sentence_and_the_most_active():
    leak = told(h.anonymous_crowd(400))
    assert leak["sentences"][0] == (
        "400 callers read 400 blobs (3.12 GiB in 400 requests) from synthtrain01/train between 14:00 and 14:04 UTC on "
        "24 Nov 2026, all using no credentials (anonymous access).")
    assert leak["sentences"][1].startswith("The most active: 2001:db8:4c1e:0::0 (8.0 MiB), ")
    assert leak["reads"]["complete"] is True


def test_bounded_evidence_without_its_full_evidence_says_the_totals_count_the_top_callers():
    [record] = h.anonymous_crowd(40)
    leak = told([replace(record, full_evidence={})])
    assert leak["reads"]["complete"] is False and leak["reads"]["caller_count"] == 10
    assert "The record keeps only the top callers of a window; the totals above count those." in leak["sentences"]


def test_a_user_delegation_sas_names_the_identity_whose_key_signed_it():
    sas = ("https://synthtrain01.blob.core.windows.net/train/a.parquet?sv=2022-11-02&sr=b&sp=r"
           "&skoid=1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d&sktid=72f988bf-86f1-41af-91ab-2d7cd011db47"
           "&se=2026-11-25T00:00:00Z&sig=REDACTED")
    said = credential(["SAS"], [sas])
    assert said["text"] == ("a user-delegation SAS (signed with a user-delegation key of object ID "
                            "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d; for one blob; allowing read; valid until "
                            "2026-11-25T00:00:00Z)")
    assert said["account_key_may_sign"] is False
    account_sas = credential(["SAS"], ["https://a.blob.core.windows.net/c/b?sv=2022-11-02&ss=b&srt=co&sp=rl"
                                       "&sig=REDACTED"])
    assert account_sas["sas"][0]["kind"] == "an account SAS" and account_sas["account_key_may_sign"]
    assert credential(["SAS"], ["https://a.blob.core.windows.net/c/b"])["text"] == (
        "a SAS token (the sampled URIs carry no query string to say which)")
    assert credential(["AccountKey"], [])["text"] == "an account key (shared key)"
    # AuthenticationHash names the key (egress_window.kql's Keys): the sentence names it too.
    assert credential(["SAS"], ["https://a.blob.core.windows.net/c/b"], ["key1"])["text"] == (
        "a SAS token signed with account key key1")
    assert credential(["AccountKey"], [], ["key2"])["text"] == "account key key2 (shared key)"


def test_an_oauth_caller_is_named_by_its_object_id():
    [record] = h.egress_sas_leak()
    oid = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
    finding = copy.deepcopy(record.findings[0])
    finding["rule"] = "egress_volume_anomaly"
    finding["evidence"]["callers"] = [{**finding["evidence"]["callers"][0], "Caller": oid,
                                       "AuthenticationTypes": ["OAuth"], "Addresses": ["10.20.4.11"],
                                       "SampleUris": ["https://synthtrain01.blob.core.windows.net/train/x.parquet"]}]
    leak = told([replace(record, findings=[finding], full_evidence={})])
    assert leak["sentences"][0].startswith(f"The identity with object ID {oid} read 10 blobs (0.62 GiB in 10 "
                                           "requests) from synthtrain01/train")
    assert leak["sentences"][0].endswith("using an Entra ID token (OAuth).")


def test_a_public_container_says_who_opened_it_what_it_exposed_and_for_how_long():
    leak = told(h.public_container())
    assert leak["sentences"] == [
        "Dana Analyst set the container synthtrain01/training to public access at 10:00:01 UTC on 24 Nov 2026: anyone "
        "on the internet could read its blobs and list them without credentials, until it was made private at "
        "10:00:05 UTC (4 seconds later). Every blob in it was exposed; how many it holds the app cannot say (it has "
        "no data-plane access), and whether anyone read them is in the account's StorageBlobLogs (anonymous GetBlob "
        "requests)."]
    assert leak["reads"] is None and leak["after_containment"] is None
    assert [(d["account"], d["container"]) for d in leak["datasets"]] == [("synthtrain01", "training")]
    [exposure] = leak["exposures"]
    assert (exposure["kind"], exposure["caused_by"], exposure["contained_by"]) == (
        "public container", "Dana Analyst", "make_container_private")


def test_a_role_grant_says_who_granted_what_to_whom_and_what_it_could_do():
    leak = told(h.role_grant())
    assert leak["sentences"] == [
        "Dana Analyst granted ServicePrincipal 6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b the role Storage Blob Data Reader "
        "over synthtrain01 at 09:59:58 UTC on 24 Nov 2026, which let it read every blob, until the assignment was "
        "deleted at 10:00:04 UTC (6 seconds later). Reads by it show in StorageBlobLogs under its object ID."]
    assert leak["datasets"] == [{"account": "synthtrain01", "container": None, "prefix": None,
                                 "basis": ["role scope"], "account_id": h.ACCOUNT_ID}]


def test_a_held_role_deletion_says_the_grant_is_still_open_and_an_approval_ends_it():
    held, approval = h.role_grant(approved=True)
    [sentence] = told([held])["sentences"]
    assert sentence.split(", which let it read every blob")[1].startswith(
        "; it is still open: its containment waits for a person since 10:00:04 UTC.")
    [sentence] = told([held, approval])["sentences"]
    assert "until the assignment was deleted at 10:42:00 UTC (42 minutes later)" in sentence


def test_a_release_says_it_put_the_exposure_back():
    [record] = h.public_container()
    release = replace(record, key=f"{record.key}.released", operation="release", outcome="reported",
                      releases=record.key, actor=h.OPERATOR, decided_at="2026-11-24T10:30:00.000000Z",
                      recorded_at="2")
    [sentence] = told([record, release])["sentences"]
    assert ("until it was made private at 10:00:05 UTC (4 seconds later); sec-oncall@contoso.example released the "
            "containment at 10:30 UTC, which put the exposure back") in sentence


def test_a_finding_of_the_sweep_says_when_it_was_found_not_when_it_began():
    [record] = h.public_container()
    swept = replace(record, event_id=None, actor={}, event_time=None, operation="drift_sweep")
    [sentence] = told([swept])["sentences"]
    assert sentence.startswith("The container synthtrain01/training let anyone on the internet read its blobs and "
                               "list them without credentials, found by the drift sweep at 10:00:05 UTC on 24 Nov "
                               "2026 (when it began is not recorded), until it was made private at 10:00:05 UTC.")


def test_an_account_opened_up_says_what_was_contained_and_what_only_recorded():
    """scenarios/account-opened-up.json: the public container is contained by turning anonymous
    access off on its account; the network and shared-key settings are recorded only."""
    [container] = h.public_container()
    account = h.account()
    finding = {"rule": "storage_blob_public_access_allowed", "severity": "high", "resource_id": h.ACCOUNT_ID,
               "summary": "the account allows anonymous read access to blobs", "evidence": {}}
    record = replace(container, resource_id=h.ACCOUNT_ID, actions=["disable_blob_public_access"],
                     plan=[{"action": "disable_blob_public_access", "target": h.ACCOUNT_ID}],
                     findings=[finding, {**finding, "rule": "storage_network_open_to_internet"},
                               {**finding, "rule": "storage_shared_key_access_allowed"}, *container.findings],
                     before={h.ACCOUNT_ID: account})
    said = told([record])["sentences"]
    assert said[0].startswith("Dana Analyst set the container synthtrain01/training to public access at 10:00:01 UTC "
                              "on 24 Nov 2026: anyone on the internet could read its blobs and list them without "
                              "credentials, until anonymous access was turned off on its account at 10:00:05 UTC")
    assert said[1] == ("After a change by Dana Analyst, the account synthtrain01 allowed anonymous access to blobs (a "
                       "container set to public was readable by anyone on the internet) from 10:00:01 UTC on 24 Nov "
                       "2026, until it was contained at 10:00:05 UTC (4 seconds later).")
    assert said[2] == ("After a change by Dana Analyst, the account synthtrain01 accepted connections from any network "
                       "(a key, a SAS or a granted identity could read from anywhere) and let its account keys, and "
                       "SAS tokens signed with them, read the data from 10:00:01 UTC on 24 Nov 2026; it is recorded, "
                       "not contained (its rule is not one the app contains automatically).")
    own = told([replace(container, outcome="reported", actions=[], plan=[], contained_at=None, own_deployment=True)])
    assert own["sentences"][0].split(" without credentials")[1].startswith(
        "; it is not contained: it is the app's own deployment, which only a person changes.")


def test_records_that_name_nothing_read_or_exposed_say_so():
    [record] = h.public_container()
    assert told([replace(record, findings=[])])["sentences"] == [
        "The records of this incident name no data read or exposed."]


def test_a_key_listing_says_who_listed_the_keys_from_where_and_when_and_that_rotation_waits():
    """scenarios/keys-listed-by-unallowed-identity.json: a service principal not allowlisted
    lists the keys of synthtrain01; rotating them waits for a person."""
    from containment.core.records import DecisionRecord

    finding = {"rule": "storage_keys_listed_by_unallowed_principal", "severity": "high", "resource_id": h.ACCOUNT_ID,
               "summary": "ServicePrincipal etl-sandbox ... listed the account keys", "evidence": {
                   "operation": "Microsoft.Storage/storageAccounts/listKeys/action",
                   "principalId": "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a", "principalName": "etl-sandbox",
                   "principalType": "ServicePrincipal", "clientIpAddress": "198.51.100.23",
                   "eventTime": "2026-11-24T10:00:00.000000Z", "role": "Storage Account Contributor",
                   "keys": ["key1", "key2"], "keys_why": "listKeys returns both account keys, key1 and key2"}}
    step = {"action": "rotate_account_keys", "target": h.ACCOUNT_ID}
    held = DecisionRecord(
        key="e7a1b2c3-0000-4000-8000-00000000a001", resource_id=h.ACCOUNT_ID, outcome="pending-approval",
        mode="enforce", reason="contain storage_keys_listed_by_unallowed_principal: rotate_account_keys waits for a "
                               "person (CONTAINMENT_APPROVAL_ACTIONS)",
        event_id="e7a1b2c3-0000-4000-8000-00000000a001", operation="Microsoft.Storage/storageAccounts/listKeys/action",
        actions=["rotate_account_keys"], plan=[step], awaiting_approval=[step],
        rules=["storage_keys_listed_by_unallowed_principal"], severity="high", findings=[finding],
        actor={"object_id": "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a", "name": "etl-sandbox"},
        before={h.ACCOUNT_ID: h.account()}, event_time="2026-11-24T10:00:00.000000Z",
        decided_at="2026-11-24T10:00:03.000000Z", recorded_at="1")
    leak = told([held])
    [exposure] = leak["exposures"]
    assert exposure["kind"] == "key listing"
    assert leak["sentences"] == [
        "ServicePrincipal etl-sandbox listed the account keys of synthtrain01 from 198.51.100.23 at 10:00 UTC on "
        "24 Nov 2026 (allowed by Storage Account Contributor): key1 and key2 must be taken as known; it is still "
        "open: its containment waits for a person since 10:00:03 UTC. Reads with a key or a SAS carry no identity in "
        "StorageBlobLogs: only their address and which key signed them show."]
    assert [(d["account"], d["basis"]) for d in leak["datasets"]] == [("synthtrain01", ["exposed resource"])]
