"""Containing an object replication policy that copies synthetic data out of scope: delete
it on the source account, after recording its full body, so a person can put it back exactly
(containment.plan.restore.restore_by_person). Replication is driven by the source's policy:
without it nothing more is copied; what the destination already holds stays there
(https://learn.microsoft.com/azure/storage/blobs/object-replication-overview). Replication
rule: containment.judge.replication."""
from __future__ import annotations

from containment.core.ids import REPLICATION_POLICY, ResourceId
from containment.core.settings import Settings
from containment.plan.action import Action, State, Write, still_there

_POLICIES = "Microsoft.Storage/storageAccounts/objectReplicationPolicies"


def delete(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    return [Write("DELETE", target.text)]


def _destination(policy: dict | None) -> str:
    return str(((policy or {}).get("properties") or {}).get("destinationAccount") or "").lower()


def redirected(state: State, settings: Settings) -> str | None:
    """A policy ID that now copies to another destination than the one judged: deleting it
    would stop a replication nobody judged."""
    target = state.facts.get("target")
    recorded = (state.facts.get("recorded") or {}).get(target.key) if target is not None else None
    if state.body is None or recorded is None or _destination(recorded) == _destination(state.body):
        return None
    return (f"{target.text} now replicates to {_destination(state.body)!r}, not to {_destination(recorded)!r} "
            "as judged")


ACTIONS = (
    Action("remove_replication_policy", (REPLICATION_POLICY,), "storage_replication_to_unprotected_destination",
           (f"{_POLICIES}/read", f"{_POLICIES}/delete"), delete, exposed=still_there, moot=redirected),
)
