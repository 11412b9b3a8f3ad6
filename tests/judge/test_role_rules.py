"""The role-assignment rule (containment.judge.roles) and the permission arithmetic it rests
on (containment.judge.role_permissions). Every rule the family declares has a case here."""
from __future__ import annotations

import pytest

from containment.core.ids import ROLE_ASSIGNMENT
from containment.judge import roles as family
from containment.judge.role_permissions import data_paths, grants, matches
from containment.judge.rule import Context
from containment.judge.scope import Protection
from containment.plan.registry import judge
from tests.helpers import arm_bodies as b
from tests.helpers.settings import load_settings

ACCOUNT = b.storage_account()
ASSIGNMENT = b.role_assignment(ACCOUNT["id"], "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b", b.STORAGE_BLOB_DATA_READER,
                               name="0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e01")
READER_ROLE = {"properties": {"roleName": "Storage Blob Data Reader", "permissions": [
    {"actions": ["Microsoft.Storage/storageAccounts/blobServices/containers/read"],
     "dataActions": ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"]}]}}


def context(**facts) -> Context:
    return Context(load_settings({}), Protection(tagged=True, protected_scope=None), facts)


def findings(**facts):
    return judge(ROLE_ASSIGNMENT, ASSIGNMENT, context(**facts))


FACTS = {"role_definition": READER_ROLE, "data_paths": data_paths(READER_ROLE), "covered": [ACCOUNT["id"]]}
MANAGEMENT_GROUP = "/providers/Microsoft.Management/managementGroups/research"
CASES = {"role_assignment_grants_data_access": FACTS,
         "role_assignment_inherited_grants_data_access": {**FACTS, "inherited_from": MANAGEMENT_GROUP}}


def test_every_role_rule_has_a_case_here():
    assert {rule.id for rule in family.RULES} == set(CASES)


def test_a_data_role_over_a_protected_account_is_a_finding_with_its_evidence():
    [found] = findings(**CASES["role_assignment_grants_data_access"])
    assert (found.rule, found.severity, found.resource_id) == ("role_assignment_grants_data_access", "high",
                                                               ASSIGNMENT["id"])
    assert found.summary == ("ServicePrincipal 5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b holds Storage Blob Data Reader "
                             "over protected synthetic data (dataActions grant "
                             "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read)")
    assert found.evidence["covers"] == [ACCOUNT["id"]] and "allowlist_expired" not in found.evidence


def test_an_inherited_assignment_is_its_own_finding_naming_who_must_act():
    [found] = findings(**CASES["role_assignment_inherited_grants_data_access"])
    assert found.rule == "role_assignment_inherited_grants_data_access"
    assert found.evidence["must_act"] == f"an owner or User Access Administrator of {MANAGEMENT_GROUP}"
    assert found.summary.endswith(f"inherited from {MANAGEMENT_GROUP}, above this app's reach: an owner or User "
                                  f"Access Administrator of {MANAGEMENT_GROUP} must remove it")


def test_an_expired_allowlist_entry_is_named_in_the_evidence():
    [found] = findings(**FACTS, allowlist_expired="2026-01-01T00:00:00.000000Z")
    assert found.evidence["allowlist_expired"] == "2026-01-01T00:00:00.000000Z"


@pytest.mark.parametrize("facts", [{**FACTS, "data_paths": []}, {**FACTS, "covered": []}],
                         ids=["no path to the data", "covers nothing protected"])
def test_without_a_data_path_or_a_protected_scope_there_is_no_finding(facts):
    assert findings(**facts) == []


@pytest.mark.parametrize("permission, operation, expected", [
    ("*", "Microsoft.Storage/storageAccounts/listKeys/action", True),
    ("Microsoft.Storage/*", "microsoft.storage/storageaccounts/listkeys/action", True),
    ("*/read", "Microsoft.Storage/storageAccounts/listKeys/action", False),
    ("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*",
     "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read", True),
    ("Microsoft.Storage/storageAccounts/*/read", "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
     True),
    ("Microsoft.Storage/storageAccounts/read", "Microsoft.Storage/storageAccounts/readX", False),
])
def test_wildcards(permission, operation, expected):
    assert matches(permission, operation) is expected


def test_not_actions_subtract_within_their_own_block_only():
    blocks = [{"actions": ["*"], "notActions": ["Microsoft.Storage/*"]},
              {"actions": ["Microsoft.Storage/storageAccounts/listKeys/action"]}]
    assert grants(blocks, "Microsoft.Storage/storageAccounts/listKeys/action", data=False)
    assert not grants(blocks[:1], "Microsoft.Storage/storageAccounts/listKeys/action", data=False)
