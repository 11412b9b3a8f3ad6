"""Guardrails end to end, through the function entry points as the host invokes them, against
the ARM emulator and Azurite: a protected account's blob diagnostic setting deleted or
redirected is put back from the last good body the app kept; a policy assignment covering
protected data deleted or set to DoNotEnforce waits for a person; an exemption on protected
data is reported; guardrails of unprotected data are left alone."""
from __future__ import annotations

from tests.helpers import arm_bodies as b
from tests.helpers import events
from tests.helpers.events import happened_now


# Each event here tells of a change the test has just made, after what the app read before it.
def write_event(*args, **kwargs) -> dict:
    return happened_now(events.write_event(*args, **kwargs))


def delete_event(*args, **kwargs) -> dict:
    return happened_now(events.delete_event(*args, **kwargs))


ACCOUNT = b.storage_account("synthtrain01")
UNPROTECTED = b.storage_account("scratch01", tags={"team": "analytics"})
SETTING = b.diagnostic_setting(ACCOUNT["id"])
ASSIGNMENT = b.policy_assignment(b.RG_ID)
DIAGNOSTIC_WRITE, DIAGNOSTIC_DELETE = ("Microsoft.Insights/diagnosticSettings/write",
                                       "Microsoft.Insights/diagnosticSettings/delete")
ASSIGNMENT_WRITE, ASSIGNMENT_DELETE = ("Microsoft.Authorization/policyAssignments/write",
                                       "Microsoft.Authorization/policyAssignments/delete")
ENFORCE = {"CONTAINMENT_MODE": "enforce", "CONTAINMENT_LOG_WORKSPACE_RESOURCE_ID": b.WORKSPACE}


def seen_then(app, emulator, resources: list[dict], guardrail: dict, write: str, change, event: dict) -> list:
    """Seed, deliver the guardrail's write while it is good (the app keeps its last good
    body), change it in the emulator as someone would, deliver the event, run the queue."""
    emulator.seed(resources)
    app.configure(**ENFORCE)
    app.deliver(write_event(guardrail["id"], write))
    change()
    app.deliver(event)
    app.drain()
    return app.records()


def test_a_deleted_diagnostic_setting_is_put_back_from_its_last_good_body(app, emulator):
    good, restored = seen_then(app, emulator, [ACCOUNT, SETTING], SETTING, DIAGNOSTIC_WRITE,
                               lambda: emulator.arm.resources.pop(SETTING["id"].lower()),
                               delete_event(SETTING["id"], DIAGNOSTIC_DELETE))
    assert good.outcome == "compliant" and "kept as its last good body" in good.reason
    assert (restored.outcome, restored.actions, restored.rules) == ("contained", ["restore_diagnostic_setting"],
                                                                    ["diagnostic_setting_removed"])
    finding = restored.findings[0]
    assert finding["weakness"] is True and finding["severity"] == "high"
    assert finding["evidence"]["lastGood"]["body"] == SETTING
    assert emulator.arm.get(SETTING["id"]) == SETTING
    assert [(w.method, w.url.split("?")[0].endswith(SETTING["id"])) for w in app.writes()] == [("PUT", True)]


def test_a_deleted_diagnostic_setting_never_seen_good_is_reported_with_nothing_to_restore_from(app, emulator):
    emulator.seed([ACCOUNT])
    app.configure(**ENFORCE)
    app.deliver(delete_event(SETTING["id"], DIAGNOSTIC_DELETE))
    app.drain()
    [record] = app.records()
    assert (record.outcome, record.actions) == ("reported", [])
    assert "nothing to act from" in record.reason and "nothing to restore from" in record.reason
    assert record.findings[0]["evidence"]["lastGood"] is None and app.writes() == []


def test_a_diagnostic_setting_rewritten_with_the_same_categories_to_the_same_workspace_is_compliant(app, emulator):
    rewritten = {**SETTING, "properties": {**SETTING["properties"], "logs": list(reversed(SETTING["properties"]["logs"]))}}
    good, again = seen_then(app, emulator, [ACCOUNT, SETTING], SETTING, DIAGNOSTIC_WRITE,
                            lambda: emulator.seed([rewritten]), write_event(SETTING["id"], DIAGNOSTIC_WRITE))
    assert (good.outcome, again.outcome) == ("compliant", "compliant") and app.writes() == []


def test_a_diagnostic_setting_sent_elsewhere_or_without_reads_is_put_back(app, emulator):
    for name, changed in (("elsewhere", b.diagnostic_setting(ACCOUNT["id"], workspace=b.OTHER_WORKSPACE)),
                          ("no-reads", b.diagnostic_setting(ACCOUNT["id"], categories=("StorageWrite",)))):
        app.configure(**ENFORCE, CONTAINMENT_LEDGER_TABLE=f"tguard{name.replace('-', '')}")
        emulator.seed([ACCOUNT, SETTING])
        app.deliver(write_event(SETTING["id"], DIAGNOSTIC_WRITE))
        emulator.seed([changed])
        app.deliver(write_event(SETTING["id"], DIAGNOSTIC_WRITE))
        app.drain()
        records = [r for r in app.records() if r.rules]
        assert [(r.outcome, r.rules) for r in records] == [("contained", ["diagnostic_setting_not_sending_reads"])], name
        assert emulator.arm.get(SETTING["id"]) == SETTING, name


def test_a_diagnostic_setting_of_an_unprotected_account_is_ignored(app, emulator):
    setting = b.diagnostic_setting(UNPROTECTED["id"])
    emulator.seed([UNPROTECTED])
    app.configure(**ENFORCE)
    app.deliver(delete_event(setting["id"], DIAGNOSTIC_DELETE))
    [record] = app.records()
    assert record.outcome == "ignored" and "neither tagged" in record.reason


def test_a_deleted_policy_assignment_waits_for_a_person_and_says_its_identity_will_be_new(app, emulator):
    assignment = b.policy_assignment(b.RG_ID, identity=True)
    good, held = seen_then(app, emulator, [ACCOUNT, assignment], assignment, ASSIGNMENT_WRITE,
                           lambda: emulator.arm.resources.pop(assignment["id"].lower()),
                           delete_event(assignment["id"], ASSIGNMENT_DELETE))
    assert good.outcome == "compliant"
    assert (held.outcome, held.rules) == ("pending-approval", ["policy_assignment_removed"])
    assert [step["action"] for step in held.awaiting_approval] == ["restore_policy_assignment"]
    assert "governance" in held.reason and "managed identity it names is new" in held.reason
    assert held.findings[0]["evidence"]["covers"] == [ACCOUNT["id"]]
    assert emulator.arm.get(assignment["id"]) is None and app.writes() == []


def test_a_policy_assignment_set_to_do_not_enforce_waits_for_a_person(app, emulator):
    weakened = b.policy_assignment(b.RG_ID, enforcement="DoNotEnforce")
    good, held = seen_then(app, emulator, [ACCOUNT, ASSIGNMENT], ASSIGNMENT, ASSIGNMENT_WRITE,
                           lambda: emulator.seed([weakened]), write_event(ASSIGNMENT["id"], ASSIGNMENT_WRITE))
    assert (held.outcome, held.rules) == ("pending-approval", ["policy_assignment_not_enforced"])
    assert held.findings[0]["weakness"] is True


def test_a_policy_assignment_on_an_unprotected_group_is_ignored(app, emulator):
    group = f"/subscriptions/{b.SUBSCRIPTION}/resourceGroups/rg-analytics"
    assignment = b.policy_assignment(group)
    scratch = b.storage_account("scratch02", tags={"team": "analytics"}, group="rg-analytics")
    emulator.seed([ACCOUNT, scratch])
    app.configure(**ENFORCE)
    app.deliver(delete_event(assignment["id"], ASSIGNMENT_DELETE))
    [record] = app.records()
    assert record.outcome == "ignored" and "covers no synthetic data" in record.reason


def test_an_exemption_on_protected_data_is_reported_and_one_expired_is_compliant(app, emulator):
    exemption = b.policy_exemption(ACCOUNT["id"], ASSIGNMENT["id"])
    expired = b.policy_exemption(ACCOUNT["id"], ASSIGNMENT["id"], "expired", expires_on="2020-01-01T00:00:00Z")
    emulator.seed([ACCOUNT, ASSIGNMENT, exemption, expired])
    app.configure(**ENFORCE)
    for body in (exemption, expired):
        app.deliver(write_event(body["id"], "Microsoft.Authorization/policyExemptions/write"))
    reported, compliant = app.records()
    assert (reported.outcome, reported.rules, reported.severity) == ("reported", ["policy_exemption_on_protected_data"],
                                                                     "medium")
    assert compliant.outcome == "compliant" and app.writes() == []


def test_the_drift_sweep_keeps_the_last_good_bodies_a_deletion_is_restored_from(app, emulator, moment):
    from datetime import datetime, timezone

    emulator.seed([ACCOUNT, SETTING, ASSIGNMENT])
    app.configure(**ENFORCE, CONTAINMENT_SUBSCRIPTIONS=b.SUBSCRIPTION)
    assert app.fire_at("drift_sweep", datetime(2026, 11, 24, 9, tzinfo=timezone.utc)).error is None
    ledger = app.runtime.ledger
    assert ledger.last_good_guardrail(SETTING["id"])["body"] == SETTING
    assert ledger.last_good_guardrail(ASSIGNMENT["id"])["body"] == ASSIGNMENT
    emulator.arm.resources.pop(SETTING["id"].lower())
    app.deliver(delete_event(SETTING["id"], DIAGNOSTIC_DELETE))
    app.drain()
    assert [r.outcome for r in app.records() if r.rules] == ["contained"]
    assert emulator.arm.get(SETTING["id"]) == SETTING


def test_the_sweep_judges_its_policy_assignments_from_the_accounts_it_listed_once(app, emulator, moment):
    from datetime import datetime, timezone

    on_account = b.policy_assignment(ACCOUNT["id"], "on-account")
    emulator.seed([ACCOUNT, ASSIGNMENT, on_account])
    app.configure(**ENFORCE, CONTAINMENT_SUBSCRIPTIONS=b.SUBSCRIPTION)
    assert app.fire_at("drift_sweep", datetime(2026, 11, 24, 9, tzinfo=timezone.utc)).error is None
    listings = [x.url.split("?")[0] for x in emulator.traffic
                if x.method == "GET" and x.url.split("?")[0].endswith("/providers/Microsoft.Storage/storageAccounts")]
    assert listings == [f"{emulator.endpoint}/subscriptions/{b.SUBSCRIPTION}/providers/Microsoft.Storage/storageAccounts"]
    ledger = app.runtime.ledger
    assert ledger.last_good_guardrail(ASSIGNMENT["id"]) and ledger.last_good_guardrail(on_account["id"])
    # Nothing is carried past the run: an event after it lists the accounts as they are now.
    from containment.detect.run_listing import storage_accounts

    before = len(emulator.traffic)
    storage_accounts(app.runtime, b.SUBSCRIPTION)
    assert len(emulator.traffic) == before + 1


def test_the_guardrail_calls_conform_to_microsofts_specs(app, emulator, shared, tmp_path):
    """What the app sends and receives for guardrails, checked by oav against the spec subsets
    (localazure/specs): reading and putting back a diagnostic setting, reading a policy
    assignment and the sweep's lists. The account listing by resource group, which finds the
    tagged accounts under an assignment's scope, is outside ../shared's storage subset: oav
    calls it undefined. Everything else must validate."""
    import json

    from localazure.conformance import validate_traffic

    emulator.seed([ACCOUNT, SETTING, ASSIGNMENT])
    app.configure(**ENFORCE, CONTAINMENT_SUBSCRIPTIONS=b.SUBSCRIPTION)
    app.deliver(write_event(ASSIGNMENT["id"], ASSIGNMENT_WRITE))
    app.deliver(write_event(SETTING["id"], DIAGNOSTIC_WRITE))
    emulator.arm.resources.pop(SETTING["id"].lower())
    app.deliver(delete_event(SETTING["id"], DIAGNOSTIC_DELETE))
    app.drain()
    assert [r.outcome for r in app.records()] == ["compliant", "compliant", "contained"]
    assert emulator.write_traffic(tmp_path) > 0
    report = validate_traffic(tmp_path)
    undefined = {json.loads((tmp_path / name).read_text())["liveRequest"]["url"].split("?")[0]
                 for name in report.undefined}
    assert undefined == {f"{emulator.endpoint}{b.RG_ID}/providers/Microsoft.Storage/storageAccounts"}
    assert not report.findings, str(report)
    assert {"PolicyAssignments_Get", "DiagnosticSettings_Get", "DiagnosticSettings_CreateOrUpdate"} <= \
        report.operations_covered, report.operations_covered


def test_guardrail_writes_and_deletions_reach_guardrail_change_and_no_other_deletion_does():
    from localazure.functions_host import subscribers

    assert subscribers(delete_event(SETTING["id"], DIAGNOSTIC_DELETE)) == ["guardrail_change"]
    assert subscribers(write_event(ASSIGNMENT["id"], ASSIGNMENT_WRITE)) == ["guardrail_change"]
    assert subscribers(delete_event(ACCOUNT["id"], "Microsoft.Storage/storageAccounts/delete")) == []


EVENT_HUB = (f"/subscriptions/{b.SUBSCRIPTION}/resourceGroups/rg-elsewhere/providers/Microsoft.EventHub/namespaces/"
             "siem-outside/authorizationRules/RootManageSharedAccessKey")
SIEM = b.diagnostic_setting(ACCOUNT["id"], "siem-deletes", workspace=b.OTHER_WORKSPACE, categories=("StorageDelete",))


def with_properties(setting: dict, **properties) -> dict:
    return {**setting, "properties": {**setting["properties"], **properties}}


def approve(app, record) -> list:
    """A person approves the held decision; the writes its approval made."""
    import json

    import function_app
    from localazure.functions_host import call_http
    from tests.helpers.operators import ONCALL

    before = len(app.writes())
    response = call_http(function_app.app, "POST", f"decisions/{record.key}/approve", None, ONCALL)
    assert response.status_code == 202, json.loads(response.get_body())
    app.drain()
    return app.writes()[before:]


def test_a_setting_that_also_sends_to_an_event_hub_is_never_kept_and_what_is_restored_sends_only_to_the_workspace(
        app, emulator):
    hub = with_properties(SETTING, eventHubAuthorizationRuleId=EVENT_HUB, eventHubName="exfil")
    good, removed = seen_then(app, emulator, [ACCOUNT, hub], hub, DIAGNOSTIC_WRITE,
                              lambda: emulator.arm.resources.pop(SETTING["id"].lower()),
                              delete_event(SETTING["id"], DIAGNOSTIC_DELETE))
    assert good.outcome == "compliant" and "not kept as its last good body: it also sends to " \
        "eventHubAuthorizationRuleId, eventHubName" in good.reason
    assert removed.outcome == "reported" and "nothing to restore from" in removed.reason
    assert app.runtime.ledger.last_good_guardrail(SETTING["id"]) is None
    # A body an earlier version kept with the hub: what is put back is built from the workspace
    # and its categories alone, and the attacker's hub is not among them.
    app.runtime.ledger.keep_guardrail(hub)
    app.deliver(delete_event(SETTING["id"], DIAGNOSTIC_DELETE, event_id="second-deletion"))
    app.drain()
    assert app.records()[-1].outcome == "contained"
    assert emulator.arm.get(SETTING["id"])["properties"] == SETTING["properties"]


def test_without_the_workspace_setting_nothing_is_kept_and_nothing_restored_and_the_finding_says_why(app, emulator):
    emulator.seed([ACCOUNT, SETTING])
    app.configure(CONTAINMENT_MODE="enforce")
    app.deliver(write_event(SETTING["id"], DIAGNOSTIC_WRITE))
    app.runtime.ledger.keep_guardrail(SETTING)  # as an earlier version kept it
    emulator.arm.resources.pop(SETTING["id"].lower())
    app.deliver(delete_event(SETTING["id"], DIAGNOSTIC_DELETE))
    app.drain()
    good, removed = app.records()
    assert good.outcome == "compliant" and "not kept" in good.reason and "CONTAINMENT_LOG_WORKSPACE_RESOURCE_ID" in \
        good.reason
    assert removed.outcome == "reported" and "needs CONTAINMENT_LOG_WORKSPACE_RESOURCE_ID" in removed.reason
    assert "needs CONTAINMENT_LOG_WORKSPACE_RESOURCE_ID" in removed.findings[0]["evidence"]["restore"]
    assert emulator.arm.get(SETTING["id"]) is None and app.writes() == []


def test_a_last_good_body_to_another_workspace_than_todays_is_not_restored(app, emulator):
    emulator.seed([ACCOUNT, SETTING])
    app.configure(**ENFORCE)
    app.deliver(write_event(SETTING["id"], DIAGNOSTIC_WRITE))
    app.configure(**{**ENFORCE, "CONTAINMENT_LOG_WORKSPACE_RESOURCE_ID": b.OTHER_WORKSPACE})
    emulator.arm.resources.pop(SETTING["id"].lower())
    app.deliver(delete_event(SETTING["id"], DIAGNOSTIC_DELETE))
    app.drain()
    removed = app.records()[-1]
    assert removed.outcome == "reported" and "its last good body no longer sends reads where the app looks" in \
        removed.reason and app.writes() == []


def test_an_unrelated_sibling_setting_is_no_finding_and_the_one_that_delivers_reads_is_still_restored(app, emulator):
    good, siem = seen_then(app, emulator, [ACCOUNT, SETTING], SETTING, DIAGNOSTIC_WRITE,
                           lambda: emulator.seed([SIEM]), write_event(SIEM["id"], DIAGNOSTIC_WRITE))
    assert (good.outcome, siem.outcome) == ("compliant", "compliant")
    assert "not kept as its last good body: no StorageRead" in siem.reason
    emulator.arm.resources.pop(SETTING["id"].lower())
    app.deliver(delete_event(SETTING["id"], DIAGNOSTIC_DELETE))
    app.drain()
    assert (app.records()[-1].outcome, app.records()[-1].rules) == ("contained", ["diagnostic_setting_removed"])
    assert emulator.arm.get(SETTING["id"]) == SETTING and emulator.arm.get(SIEM["id"]) == SIEM


def test_a_setting_changed_or_deleted_while_another_delivers_the_reads_is_compliant_and_nothing_is_written(
        app, emulator):
    other = b.diagnostic_setting(ACCOUNT["id"], "platform-logs")
    changed = b.diagnostic_setting(ACCOUNT["id"], categories=("StorageWrite",))
    emulator.seed([ACCOUNT, SETTING])
    app.configure(**ENFORCE)
    app.deliver(write_event(SETTING["id"], DIAGNOSTIC_WRITE))
    emulator.seed([changed, other])
    app.deliver(write_event(SETTING["id"], DIAGNOSTIC_WRITE))
    emulator.arm.resources.pop(SETTING["id"].lower())
    app.deliver(delete_event(SETTING["id"], DIAGNOSTIC_DELETE))
    app.drain()
    _, rewritten, deleted = app.records()
    for record in (rewritten, deleted):
        assert record.outcome == "compliant" and f"through {other['id']}" in record.reason
    assert app.writes() == []


def test_a_restoration_is_not_carried_out_once_another_setting_delivers_the_reads(app, emulator):
    other = b.diagnostic_setting(ACCOUNT["id"], "platform-logs")
    emulator.seed([ACCOUNT, SETTING])
    app.configure(**ENFORCE)
    app.deliver(write_event(SETTING["id"], DIAGNOSTIC_WRITE))
    emulator.arm.resources.pop(SETTING["id"].lower())
    app.deliver(delete_event(SETTING["id"], DIAGNOSTIC_DELETE))
    emulator.seed([other])  # someone put reads back under another name before the queue ran
    app.drain()
    assert emulator.arm.get(SETTING["id"]) is None and app.writes() == []
    moot = app.records()[-1]
    assert moot.outcome == "reported" and f"moot, nothing done: another setting of its blob service, {other['id']}" \
        in moot.reason


def test_a_policy_assignment_weakened_in_its_parameters_waits_and_is_restored_from_its_last_good_body(app, emulator):
    tampered = {**ASSIGNMENT, "properties": {**ASSIGNMENT["properties"], "enforcementMode": "DoNotEnforce",
                                             "parameters": {"effect": {"value": "Disabled"}}}}
    good, held = seen_then(app, emulator, [ACCOUNT, ASSIGNMENT], ASSIGNMENT, ASSIGNMENT_WRITE,
                           lambda: emulator.seed([tampered]), write_event(ASSIGNMENT["id"], ASSIGNMENT_WRITE))
    assert (held.outcome, held.rules) == ("pending-approval", ["policy_assignment_not_enforced"])
    assert "no longer enforced as it was: enforcementMode, parameters" in held.findings[0]["summary"]
    assert held.findings[0]["evidence"]["weakened"] == ["enforcementMode", "parameters"]
    assert app.runtime.ledger.last_good_guardrail(ASSIGNMENT["id"])["body"] == ASSIGNMENT  # never replaced
    [write] = approve(app, held)
    restored = emulator.arm.get(ASSIGNMENT["id"])["properties"]
    assert write.method == "PUT" and (restored["enforcementMode"], restored["parameters"]) == ("Default", {})


def test_a_policy_assignment_with_only_its_not_scopes_changed_is_weakened(app, emulator):
    elsewhere = f"/subscriptions/{b.SUBSCRIPTION}/resourceGroups/rg-synthetic/providers/Microsoft.Storage/" \
                "storageAccounts/unrelated01"
    excluded = {**ASSIGNMENT, "properties": {**ASSIGNMENT["properties"], "notScopes": [elsewhere]}}
    _, held = seen_then(app, emulator, [ACCOUNT, ASSIGNMENT], ASSIGNMENT, ASSIGNMENT_WRITE,
                        lambda: emulator.seed([excluded]), write_event(ASSIGNMENT["id"], ASSIGNMENT_WRITE))
    assert (held.outcome, held.findings[0]["evidence"]["weakened"]) == ("pending-approval", ["notScopes"])


def test_a_policy_assignment_never_seen_good_excluding_protected_data_is_reported_with_nothing_to_restore_from(
        app, emulator):
    excluded = {**ASSIGNMENT, "properties": {**ASSIGNMENT["properties"], "notScopes": [ACCOUNT["id"]]}}
    emulator.seed([ACCOUNT, excluded])
    app.configure(**ENFORCE)
    app.deliver(write_event(ASSIGNMENT["id"], ASSIGNMENT_WRITE))
    [record] = app.records()
    assert (record.outcome, record.rules) == ("reported", ["policy_assignment_not_enforced"])
    assert record.findings[0]["evidence"]["notScopes"] == [ACCOUNT["id"]] and "nothing to restore from" in record.reason
    assert app.runtime.ledger.last_good_guardrail(ASSIGNMENT["id"]) is None


def test_a_policy_assignment_set_to_do_not_enforce_never_seen_good_is_set_back_from_itself(app, emulator):
    weakened = b.policy_assignment(b.RG_ID, enforcement="DoNotEnforce")
    emulator.seed([ACCOUNT, weakened])
    app.configure(**ENFORCE)
    app.deliver(write_event(ASSIGNMENT["id"], ASSIGNMENT_WRITE))
    [held] = app.records()
    assert held.outcome == "pending-approval"
    approve(app, held)
    assert emulator.arm.get(ASSIGNMENT["id"])["properties"]["enforcementMode"] == "Default"
