"""Which findings are weaknesses (a weakened control that shows no one able to reach the data
who should not: containment.judge.rule) and which are exposures, rule by rule, as the README's
rule table says; and that a finding says so where an auditor reads it, in the record."""
from __future__ import annotations

from containment.core.findings import Finding, is_weakness
from containment.judge.registry import RULES, judge
from containment.judge.rule import Context
from containment.judge.scope import Protection
from tests.helpers import arm_bodies as b
from tests.helpers.settings import load_settings

# Decided one by one (the reasons are beside each rule in containment/judge/storage.py and nsg.py).
WEAKNESSES = {
    "storage_blob_public_access_allowed",  # admits no one until a container is public (an exposure of its own)
    "storage_network_open_to_internet",  # every caller still needs a key, a SAS or a role
    "storage_shared_key_access_allowed", "storage_cross_tenant_replication_allowed", "storage_tls_below_1_2",
    "storage_scope_tag_removed", "storage_sas_expiry_policy_missing", "storage_key_expiry_policy_missing",
    "storage_keys_older_than_limit", "nsg_outbound_open_to_internet",
    "egress_sas_expiry_policy_violated",  # a SAS outlives its policy; its caller is not shown in the wrong hands
    # Guardrails (containment/judge/guardrails.py): a lost signal or a weakened control, no one's access changed.
    "diagnostic_setting_removed", "diagnostic_setting_not_sending_reads", "policy_assignment_removed",
    "policy_assignment_not_enforced", "policy_exemption_on_protected_data",
    # the data stays encrypted at rest whoever manages the key; a key out of sight admits no one
    # (containment.judge.encryption)
    "storage_customer_key_outside_watch", "storage_encryption_not_customer_managed",
    "storage_infrastructure_encryption_off",
    "egress_logs_stopped",  # the app's own signal is lost: no one is shown reaching the data
    # containment/judge/key_vault.py: every caller still needs a token and a key permission; nothing is
    # destroyed until someone with the purge permission acts.
    "key_vault_network_open", "key_vault_purge_protection_off",
}


def test_the_weaknesses_are_exactly_the_rules_decided_so_and_everything_else_is_an_exposure():
    assert {rule.id for rule in RULES.values() if rule.weakness} == WEAKNESSES
    # What shows someone able to reach the data stays an exposure, and so does what cannot be judged.
    for exposure in ("storage_container_public_access", "role_assignment_grants_data_access",
                     "storage_keys_listed_by_unallowed_principal", "storage_replication_to_unprotected_destination",
                     "nsg_inbound_admits_untrusted_sources", "nsg_rule_unreadable", "egress_anonymous_read",
                     "egress_copy_out_of_scope", "egress_key_or_sas_from_untrusted_network",
                     "key_vault_key_access_by_unallowed_principal", "key_vault_key_use_by_unexpected_caller",
                     "storage_customer_key_unavailable"):  # an availability breach (containment.judge.encryption)
        assert not RULES[exposure].weakness, exposure


def test_a_weakness_finding_says_so_in_the_record_and_an_exposure_carries_nothing_new():
    body = b.storage_account(allowBlobPublicAccess=False, allowSharedKeyAccess=True)
    found = judge(body["type"], body, Context(load_settings({}), Protection(tagged=True, protected_scope=None)))
    shared = next(f for f in found if f.rule == "storage_shared_key_access_allowed")
    assert shared.weakness and shared.as_dict()["weakness"] is True and is_weakness(shared.as_dict())
    exposure = Finding("storage_container_public_access", "high", body["id"], "public", {})
    assert "weakness" not in exposure.as_dict() and not is_weakness(exposure.as_dict())
    # A record written before weaknesses were told apart, or edited to say anything but true, is an exposure.
    assert not is_weakness({"rule": "storage_tls_below_1_2", "weakness": "yes"})
