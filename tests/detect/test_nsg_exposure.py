"""NSG containment end to end through the function entry points."""
from __future__ import annotations

import ipaddress
import json

import pytest

from localazure.arm import default_rules
from tests.helpers import arm_bodies as b
from tests.helpers.events import SELF, write_event

NSG_WRITE = "Microsoft.Network/networkSecurityGroups/write"
RULE_WRITE = "Microsoft.Network/networkSecurityGroups/securityRules/write"
TRAINING = "10.20.0.0/16"


def rules_of(emulator, nsg) -> dict[str, dict]:
    return {r["name"]: r["properties"] for r in emulator.arm.get(nsg["id"])["properties"]["securityRules"]}


def contain(app, nsg, event_resource=None, **settings):
    app.configure(**{"CONTAINMENT_MODE": "enforce", "CONTAINMENT_ALLOWED_CIDRS": TRAINING, **settings})
    resource = event_resource or nsg["id"]
    app.deliver(write_event(resource, RULE_WRITE if "/securityRules/" in resource else NSG_WRITE))
    app.drain()
    return app.records()


def test_allow_any_at_priority_100_is_contained_by_disabling_it(app, emulator):
    nsg = b.nsg(rules=[b.security_rule("allow-any", 100, source="*", port="*")])
    emulator.seed([nsg])
    [record] = contain(app, nsg)
    assert (record.outcome, record.actions) == ("contained", ["block_untrusted_inbound"])
    assert rules_of(emulator, nsg)["allow-any"]["access"] == "Deny"  # no priority above 100: fallback
    assert list(record.before) == list(record.after) == [nsg["id"]]  # the evidence is the whole NSG
    before = record.before[nsg["id"]]
    assert before["properties"]["securityRules"][0]["properties"]["access"] == "Allow"  # undo is possible
    assert record.after[nsg["id"]]["properties"]["securityRules"][0]["properties"]["access"] == "Deny"


def test_internet_on_443_at_300_gets_a_deny_just_above_it(app, emulator):
    nsg = b.nsg(rules=[b.security_rule("allow-https", 300, source="Internet"),
                       b.security_rule("allow-training", 299, source=TRAINING)])
    emulator.seed([nsg])
    [record] = contain(app, nsg, event_resource=f"{nsg['id']}/securityRules/allow-https")
    assert record.outcome == "contained"
    rules = rules_of(emulator, nsg)
    deny = rules["deny-untrusted-allow-https"]
    assert (deny["access"], deny["priority"], deny["direction"]) == ("Deny", 298, "Inbound")
    assert (deny["sourceAddressPrefix"], deny["destinationPortRange"], deny["protocol"]) == ("Internet", "443", "Tcp")
    assert rules["allow-https"]["access"] == "Allow" and rules["allow-training"]["access"] == "Allow"
    writes = [(w.method, w.url.split("?")[0].rsplit("/", 1)[1]) for w in app.writes()]
    assert writes == [("PUT", "deny-untrusted-allow-https")]


def test_a_source_inside_the_allowed_cidrs_is_compliant(app, emulator):
    nsg = b.nsg(rules=[b.security_rule("allow-training", 200, source="10.20.4.0/24")])
    emulator.seed([nsg])
    [record] = contain(app, nsg)
    assert record.outcome == "compliant" and app.writes() == []


def test_a_rule_already_shadowed_by_a_higher_precedence_deny_is_compliant(app, emulator):
    nsg = b.nsg(rules=[b.security_rule("deny-internet", 150, source="*", access="Deny", port="*"),
                       b.security_rule("allow-https", 300, source="Internet")])
    emulator.seed([nsg])
    assert [r.outcome for r in contain(app, nsg)] == ["compliant"]


def test_a_deny_that_covers_only_some_ports_does_not_shadow(app, emulator):
    nsg = b.nsg(rules=[b.security_rule("deny-low", 150, source="*", access="Deny", port="0-442"),
                       b.security_rule("allow-wide", 300, source="Internet", port="400-500")])
    emulator.seed([nsg])
    [record] = contain(app, nsg)
    assert record.outcome == "contained"
    assert rules_of(emulator, nsg)["deny-untrusted-allow-wide"]["destinationPortRange"] == "400-500"


def test_one_foreign_entry_among_source_prefixes_is_found_and_only_it_is_denied(app, emulator):
    rule = b.security_rule("allow-partners", 400, source="*")
    rule["properties"].pop("sourceAddressPrefix")
    rule["properties"]["sourceAddressPrefixes"] = ["10.20.1.0/24", "198.51.100.7/32", "10.20.2.0/24"]
    nsg = b.nsg(rules=[rule])
    emulator.seed([nsg])
    [record] = contain(app, nsg)
    assert record.findings[0]["evidence"]["untrusted_sources"] == ["198.51.100.7/32"]
    assert rules_of(emulator, nsg)["deny-untrusted-allow-partners"]["sourceAddressPrefix"] == "198.51.100.7/32"


def test_a_wide_source_is_denied_except_for_the_allowed_cidrs(app, emulator):
    nsg = b.nsg(rules=[b.security_rule("allow-all-v4", 500, source="0.0.0.0/0")])
    emulator.seed([nsg])
    [record] = contain(app, nsg)
    assert record.outcome == "contained"
    denied = [ipaddress.ip_network(p) for p in rules_of(emulator, nsg)["deny-untrusted-allow-all-v4"]["sourceAddressPrefixes"]]
    training = ipaddress.ip_network(TRAINING)
    assert not any(n.overlaps(training) for n in denied)
    assert sum(n.num_addresses for n in denied) == 2**32 - training.num_addresses


def test_an_unprotected_nsg_is_ignored(app, emulator):
    nsg = b.nsg(rules=[b.security_rule("allow-any", 100, source="*")], tags={})
    emulator.seed([nsg])
    [record] = contain(app, nsg)
    assert record.outcome == "ignored" and "not synthetic data" in record.reason


def test_a_concurrent_change_between_read_and_write_is_reread_not_overwritten(app, emulator):
    nsg = b.nsg(rules=[b.security_rule("allow-https", 300, source="Internet")])
    emulator.seed([nsg])
    conflict = emulator.faults.add("etag-conflict", path="securityRules/deny-untrusted-allow-https$", method="PUT")
    [record] = contain(app, nsg)
    assert conflict.fired == 1
    assert [x.status for x in emulator.traffic if x.method == "PUT"] == [412, 201]
    assert record.outcome == "contained"


def test_the_apps_own_deny_rule_event_is_not_rejudged(app, emulator):
    nsg = b.nsg(rules=[b.security_rule("allow-https", 300, source="Internet")])
    emulator.seed([nsg])
    contain(app, nsg, CONTAINMENT_SELF_PRINCIPAL_ID=SELF)
    own = write_event(f"{nsg['id']}/securityRules/deny-untrusted-allow-https", RULE_WRITE, actor=SELF)
    app.deliver(own)
    app.drain()
    assert [r.outcome for r in app.records()] == ["contained", "ignored"]
    # And without knowing its own identity, the app finds its Deny compliant: no loop.
    app.configure(CONTAINMENT_MODE="enforce", CONTAINMENT_ALLOWED_CIDRS=TRAINING)
    app.deliver(write_event(f"{nsg['id']}/securityRules/deny-untrusted-allow-https", RULE_WRITE))
    app.drain()
    assert [r.outcome for r in app.records()][-1] == "compliant"


def test_dry_run_changes_nothing(app, emulator):
    nsg = b.nsg(rules=[b.security_rule("allow-any", 100, source="*")])
    emulator.seed([nsg])
    [record] = contain(app, nsg, CONTAINMENT_MODE="dry-run")
    assert record.outcome == "would-contain" and app.writes() == []


def test_disable_rule_strategy(app, emulator):
    nsg = b.nsg(rules=[b.security_rule("allow-https", 300, source="Internet")])
    emulator.seed([nsg])
    contain(app, nsg, CONTAINMENT_NSG_STRATEGY="disable-rule")
    assert rules_of(emulator, nsg)["allow-https"]["access"] == "Deny"
    assert "deny-untrusted-allow-https" not in rules_of(emulator, nsg)


def test_azures_default_rules_alone_are_compliant(app, emulator):
    nsg = b.nsg()
    nsg["properties"]["defaultSecurityRules"] = default_rules(nsg["id"])  # AllowInternetOutBound among them
    emulator.seed([nsg])
    assert [r.outcome for r in contain(app, nsg)] == ["compliant"]


def test_custom_internet_egress_is_reported_and_contained_only_when_configured(app, emulator):
    egress = b.security_rule("allow-egress", 200, direction="Outbound")
    egress["properties"].update(sourceAddressPrefix="10.40.1.0/24", destinationAddressPrefix="Internet")
    nsg = b.nsg(rules=[egress])
    emulator.seed([nsg])
    [record] = contain(app, nsg)
    assert (record.outcome, record.rules) == ("reported", ["nsg_outbound_open_to_internet"])
    emulator.reset()
    emulator.seed([nsg])
    contain(app, nsg, CONTAINMENT_AUTO_CONTAIN="nsg_inbound_admits_untrusted_sources,nsg_outbound_open_to_internet")
    deny = rules_of(emulator, nsg)["deny-untrusted-allow-egress"]
    assert (deny["priority"], deny["direction"], deny["destinationAddressPrefix"], deny["sourceAddressPrefix"]) == \
        (199, "Outbound", "Internet", "10.40.1.0/24")


def test_the_recorded_real_nsgs_are_judged_without_error(app, emulator, shared):
    recorded = json.loads((shared / "recorded-arm" / "custodian-nsg.json").read_text())
    emulator.seed([recorded])
    subscription = recorded["value"][0]["id"].split("/")[2]
    app.configure(CONTAINMENT_SUBSCRIPTIONS=subscription, CONTAINMENT_PROTECTED_SCOPES=f"/subscriptions/{subscription}")
    for nsg in recorded["value"]:
        assert all(i.error is None for i in app.deliver(write_event(nsg["id"], NSG_WRITE, subscription=subscription)))
    by_name = {r.resource_id.rsplit("/", 1)[1]: r for r in app.records()}
    assert by_name["nsg-deny-all-ingress"].outcome == "compliant"
    assert "nsg_inbound_admits_untrusted_sources" in by_name["nsg-allow-all-ingress"].rules
    mixed = {f["evidence"]["rule"] for f in by_name["nsg-mixed-rules"].findings if f["rule"].startswith("nsg_inbound")}
    assert mixed == {"allow-http", "allow-https"}


def test_the_nsg_calls_conform_to_the_specs(app, emulator, shared, tmp_path):
    from localazure.conformance import validate_traffic

    nsg = b.nsg(rules=[b.security_rule("allow-https", 300, source="Internet"),
                       b.security_rule("allow-any", 100, source="*", port="*")])
    emulator.seed([nsg])
    contain(app, nsg)
    emulator.write_traffic(tmp_path)
    report = validate_traffic(tmp_path)
    assert report.ok, str(report)


# -- Deny rules ARM accepts (the emulator refuses what ARM refuses: tests/emulator/test_arm_refusals.py) --------
def families_of(deny: dict) -> set[int]:
    values = deny.get("sourceAddressPrefixes") or [deny["sourceAddressPrefix"]]
    return {ipaddress.ip_network(v).version for v in values}


def test_a_source_of_any_with_an_ipv4_and_ipv6_allowlist_gets_one_deny_per_family(app, emulator):
    nsg = b.nsg(rules=[b.security_rule("allow-any-https", 300, source="*")])
    emulator.seed([nsg])
    [record] = contain(app, nsg, CONTAINMENT_ALLOWED_CIDRS=f"{TRAINING},2001:db8:20::/48")
    assert record.outcome == "contained", record.reason
    rules = rules_of(emulator, nsg)
    v4, v6 = rules["deny-untrusted-allow-any-https-ipv4"], rules["deny-untrusted-allow-any-https-ipv6"]
    assert (families_of(v4), families_of(v6)) == ({4}, {6})
    assert (v4["priority"], v6["priority"]) == (299, 298)
    allowed = [ipaddress.ip_network(TRAINING), ipaddress.ip_network("2001:db8:20::/48")]
    for deny in (v4, v6):
        denied = [ipaddress.ip_network(p) for p in deny["sourceAddressPrefixes"]]
        assert not any(d.overlaps(a) for d in denied for a in allowed if d.version == a.version)
    assert sum(ipaddress.ip_network(p).num_addresses for p in v4["sourceAddressPrefixes"]) == 2**32 - 2**16
    assert sum(ipaddress.ip_network(p).num_addresses for p in v6["sourceAddressPrefixes"]) == 2**128 - 2**80
    assert rules["allow-any-https"]["access"] == "Allow"  # nothing else changed
    # Each write saw the NSG as the one before it left it (If-Match chained), and none was refused.
    assert [w.status for w in app.writes()] == [201, 201]


def test_an_ipv4_destination_gets_no_ipv6_deny(app, emulator):
    rule = b.security_rule("allow-any-to-subnet", 300, source="*")
    rule["properties"]["destinationAddressPrefix"] = "10.50.0.0/24"
    nsg = b.nsg(rules=[rule])
    emulator.seed([nsg])
    [record] = contain(app, nsg, CONTAINMENT_ALLOWED_CIDRS=f"{TRAINING},2001:db8:20::/48")
    assert record.outcome == "contained"
    deny = rules_of(emulator, nsg)["deny-untrusted-allow-any-to-subnet"]
    assert families_of(deny) == {4} and deny["destinationAddressPrefix"] == "10.50.0.0/24"


@pytest.mark.parametrize("tag", ["Internet", "AzureCloud", "AzureCloud.WestEurope"])
def test_a_service_tag_source_is_denied_by_the_tag_alone(app, emulator, tag):
    nsg = b.nsg(rules=[b.security_rule("allow-tag", 300, source=tag)])
    emulator.seed([nsg])
    [record] = contain(app, nsg)
    assert record.outcome == "contained"
    deny = rules_of(emulator, nsg)["deny-untrusted-allow-tag"]
    assert (deny["sourceAddressPrefix"], deny["access"], deny["priority"]) == (tag, "Deny", 299)
    assert "sourceAddressPrefixes" not in deny


def test_without_two_free_priorities_above_the_rule_is_set_to_deny_and_says_so(app, emulator):
    nsg = b.nsg(rules=[b.security_rule("allow-any-https", 101, source="*"),
                       b.security_rule("training", 100, source=TRAINING)])
    emulator.seed([nsg])
    [record] = contain(app, nsg, CONTAINMENT_ALLOWED_CIDRS=f"{TRAINING},2001:db8:20::/48")
    assert record.outcome == "contained"
    rules = rules_of(emulator, nsg)
    assert rules["allow-any-https"]["access"] == "Deny" and set(rules) == {"allow-any-https", "training"}


def test_the_recorded_mixed_rules_nsg_is_contained_with_writes_arm_accepts(app, emulator, shared):
    """Custodian's nsg-mixed-rules (recorded live): Allow * on 80 at 100, Deny * on 22 at 200,
    Allow * on 443 at 300; with an IPv4 and IPv6 allowlist, in enforce."""
    recorded = json.loads((shared / "recorded-arm" / "custodian-nsg.json").read_text())
    mixed = next(nsg for nsg in recorded["value"] if nsg["name"] == "nsg-mixed-rules")
    subscription = mixed["id"].split("/")[2]
    emulator.seed([mixed])
    app.configure(CONTAINMENT_MODE="enforce", CONTAINMENT_SUBSCRIPTIONS=subscription,
                  CONTAINMENT_PROTECTED_SCOPES=mixed["id"], CONTAINMENT_ALLOWED_CIDRS=f"{TRAINING},2001:db8:20::/48")
    app.deliver(write_event(mixed["id"], NSG_WRITE, subscription=subscription))
    app.drain()
    [record] = app.records()
    assert record.outcome == "contained", record.reason
    rules = rules_of(emulator, mixed)
    assert rules["allow-http"]["access"] == "Deny"  # at 100: nothing is above it
    assert {name for name in rules if name.startswith("deny-untrusted-allow-https")} == {
        "deny-untrusted-allow-https-ipv4", "deny-untrusted-allow-https-ipv6"}
    assert all(w.status in (200, 201) for w in app.writes())


def test_an_nsg_with_thirty_rules_open_to_the_internet_is_contained_whole(app, emulator):
    """Thirty actions in one plan: the queue message names the plan by its digest, so its
    length never stops a containment (the plan itself stays in the claim)."""
    open_rules = [b.security_rule(f"allow-internet-{n:02d}", 300 + 10 * n, source="Internet", port=str(8000 + n))
                  for n in range(30)]
    nsg = b.nsg(rules=open_rules)
    emulator.seed([nsg])
    [record] = contain(app, nsg, CONTAINMENT_MAX_ACTIONS_PER_HOUR="100")  # 30 actions: beyond the default 20
    assert record.outcome == "contained" and len(record.actions) == 30
    rules = rules_of(emulator, nsg)
    assert all(f"deny-untrusted-allow-internet-{n:02d}" in rules for n in range(30))
