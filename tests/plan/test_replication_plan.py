"""Removing a replication policy, and putting it back: what is planned, when it is moot,
and the request a person sends to restore it."""
from __future__ import annotations

import json
import shlex

from containment.core.ids import parse_resource_id
from containment.core.records import DecisionRecord
from containment.plan.action import State
from containment.plan.registry import ACTIONS
from containment.plan.restore import plan_release, restore_by_person
from tests.helpers import arm_bodies as b
from tests.helpers.settings import load_settings

SOURCE = b.storage_account("synthtrain01")
POLICY = b.replication_policy(SOURCE, "/subscriptions/5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a/resourceGroups/rg/"
                                      "providers/Microsoft.Storage/storageAccounts/elsewhere01")
TARGET = parse_resource_id(POLICY["id"])
ACTION = ACTIONS["remove_replication_policy"]


def test_the_plan_is_one_delete_of_the_policy_on_the_source():
    [write] = ACTION.plan(State(POLICY), TARGET, load_settings({}))
    assert (write.method, write.resource_id, write.body) == ("DELETE", POLICY["id"], None)


def test_a_policy_id_that_now_replicates_elsewhere_is_moot():
    elsewhere = json.loads(json.dumps(POLICY))
    elsewhere["properties"]["destinationAccount"] = SOURCE["id"].replace("synthtrain01", "other01")
    facts = {"target": TARGET, "recorded": {TARGET.key: POLICY}}
    assert ACTION.moot(State(elsewhere, facts), load_settings({})).startswith(f"{POLICY['id']} now replicates to")
    assert ACTION.moot(State(POLICY, facts), load_settings({})) is None


def test_the_restore_is_the_policy_as_it_was_without_its_read_only_properties():
    step = restore_by_person(POLICY)
    assert step["method"] == "PUT" and step["url"] == f"https://management.azure.com{POLICY['id']}?api-version=2026-09-01"
    assert step["body"] == {"properties": {k: v for k, v in POLICY["properties"].items()
                                           if k not in ("policyId", "enabledTime")}}
    words = shlex.split(step["az"])
    assert words[:6] == ["az", "rest", "--method", "put", "--url", step["url"]]
    assert json.loads(words[words.index("--body") + 1]) == step["body"]


def test_a_restore_command_is_safe_to_paste_whatever_the_policy_holds():
    hostile = json.loads(json.dumps(POLICY))
    hostile["properties"]["rules"][0]["filters"]["prefixMatch"] = ["x'; touch /tmp/pwned; '"]
    words = shlex.split(restore_by_person(hostile)["az"])
    assert json.loads(words[words.index("--body") + 1])["properties"]["rules"][0]["filters"]["prefixMatch"] == [
        "x'; touch /tmp/pwned; '"]


def test_releasing_a_removed_policy_restores_nothing_itself_and_hands_over_the_request():
    decision = DecisionRecord(key="d1", resource_id=POLICY["id"], outcome="contained", mode="enforce", reason="",
                              actions=["remove_replication_policy"], before={POLICY["id"]: POLICY},
                              after={POLICY["id"]: None})
    plan = plan_release(decision, {}, [], force=False)
    assert plan.refused is None and plan.targets == () and plan.by_person == (restore_by_person(POLICY),)
