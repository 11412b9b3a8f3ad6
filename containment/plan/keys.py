"""Taking back what keys and SAS tokens hand out: revoke every user-delegation key, rotate
the account keys. Egress findings call for these by severity (CONTAINMENT_EGRESS_CONTAINMENT);
rotating also contains the key-access rules (containment.judge.keys): keys listed, or a SAS
signed with them, by a principal not allowed to."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from containment.core.ids import STORAGE_ACCOUNT, ResourceId
from containment.core.settings import Settings
from containment.plan.action import Action, State, Write, recreated, still_there


def revoke_user_delegation_keys(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    return [Write("POST", target.text, operation="revokeUserDelegationKeys")]


def rotate_keys(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    # Both keys: a SAS signed with either stays valid while that key lives. Only the keys
    # still older than the decision: a retry after a lost answer must not rotate one twice.
    return [Write("POST", target.text, {"keyName": name}, operation="regenerateKey") for name in keys_to_rotate(state)]


def keys_to_rotate(state: State) -> list[str]:
    """The account keys created before the decision to rotate them (all of them where a time is unknown)."""
    if state.body is None:
        return []
    created = (state.body.get("properties") or {}).get("keyCreationTime") or {}
    decided = _instant(state.facts.get("decided_at"))
    return [name for name in ("key1", "key2")
            if decided is None or _instant(created.get(name)) is None or _instant(created[name]) < decided]


def keys_older_than_decision(state: State, settings: Settings) -> bool:
    """Rotation is still needed while a key was created before the decision to rotate it."""
    return bool(keys_to_rotate(state))


def _instant(text: Any) -> datetime | None:
    """An ARM or ledger timestamp as a datetime (ARM writes 7 fractional digits, Python reads 6)."""
    if not isinstance(text, str) or not text:
        return None
    head, _, fraction = text.rstrip("Z").partition(".")
    try:
        return datetime.fromisoformat(f"{head}.{(fraction + '000000')[:6]}+00:00" if fraction else f"{head}+00:00")
    except ValueError:
        return None


ACTIONS = (
    # Invalidates every user-delegation SAS; nothing on the account shows it, so "needed"
    # is decided once, by the claim, and the write is trusted on ARM's 200.
    Action("revoke_user_delegation_keys", (STORAGE_ACCOUNT,), None,
           ("Microsoft.Storage/storageAccounts/revokeUserDelegationKeys/action",),
           revoke_user_delegation_keys, exposed=still_there, verified_by_reading=False, moot=recreated),
    Action("rotate_account_keys", (STORAGE_ACCOUNT,),
           ("storage_keys_listed_by_unallowed_principal", "storage_sas_listed_by_unallowed_principal"),
           ("Microsoft.Storage/storageAccounts/read", "Microsoft.Storage/storageAccounts/regeneratekey/action"),
           rotate_keys, exposed=keys_older_than_decision, moot=recreated),
)
