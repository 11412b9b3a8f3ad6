"""The object replication rule: a protected account replicating to a destination out of
scope is critical; to a protected destination, or as the destination itself, it is not."""
from __future__ import annotations

import pytest

from containment.core.ids import REPLICATION_POLICY
from containment.judge.rule import Context
from containment.judge.scope import Protection
from containment.plan.registry import ACTIONS, RULES, judge
from tests.helpers import arm_bodies as b
from tests.helpers.settings import load_settings

SOURCE = b.storage_account("synthtrain01")
POLICY = b.replication_policy(SOURCE, "/subscriptions/x/resourceGroups/y/providers/Microsoft.Storage/storageAccounts/z")
RULE = "storage_replication_to_unprotected_destination"


def verdict(**facts):
    context = Context(load_settings({}), Protection(tagged=True, protected_scope=None), facts)
    return judge(REPLICATION_POLICY, POLICY, context)


def test_a_source_replicating_to_an_unprotected_destination_is_a_critical_finding_with_the_path():
    [finding] = verdict(side="source", destination={"protected": False, "why": "the destination account carries "
                                                                                "no scope tag"})
    assert (finding.rule, finding.severity, finding.resource_id) == (RULE, "critical", POLICY["id"])
    assert finding.evidence["destination"] == "the destination account carries no scope tag"
    assert finding.evidence["rules"] == [{"sourceContainer": "training", "destinationContainer": "replica"}]
    assert finding.evidence["policyId"] == POLICY["name"] and "allowCrossTenantReplication" not in finding.evidence


def test_a_protected_destination_is_compliant():
    assert verdict(side="source", destination={"protected": True, "why": "carries the scope tag"}) == []


@pytest.mark.parametrize("side", ["destination", None])
def test_an_account_that_receives_the_replica_is_not_this_finding(side):
    assert verdict(side=side, destination={"protected": False, "why": "x"}) == []


def test_what_was_not_established_is_out_of_scope():
    """Fail closed: a destination the assessor could not read or resolve has no `protected`."""
    [finding] = verdict(side="source", destination={})
    assert finding.evidence["destination"] == "not a protected account"


def test_a_source_that_allows_cross_tenant_replication_is_named_in_the_finding():
    [finding] = verdict(side="source", destination={"protected": False, "why": "named only as 'z'"},
                        cross_tenant_allowed=True)
    assert finding.evidence["allowCrossTenantReplication"] is True
    assert "storage_cross_tenant_replication_allowed" in finding.summary


def test_its_action_deletes_the_policy_with_read_and_delete_of_policies_only():
    action = ACTIONS["remove_replication_policy"]
    assert action.fixes == RULE and RULES[RULE].resource_type == REPLICATION_POLICY
    assert set(action.permissions) == {"Microsoft.Storage/storageAccounts/objectReplicationPolicies/read",
                                       "Microsoft.Storage/storageAccounts/objectReplicationPolicies/delete"}
