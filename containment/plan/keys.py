"""Taking back what keys and SAS tokens hand out: revoke every user-delegation key, rotate
the account keys that leaked. Egress findings call for these by severity
(CONTAINMENT_EGRESS_CONTAINMENT); rotating also contains the key-access rules
(containment.judge.keys): keys listed, or a SAS signed with them, by a principal not allowed to.

Only the keys the decision's findings on the account name are rotated (evidence `keys`: the
key that signed the SAS or request used, from AuthenticationHash, or the key that was
listed): their union, and both where any finding on the account names none (unknown). The
other key keeps working, so whoever uses it legitimately is not broken by the containment."""
from __future__ import annotations

from containment.core import clock
from containment.core.findings import ACCOUNT_KEYS
from containment.core.ids import STORAGE_ACCOUNT, ResourceId
from containment.core.settings import Settings
from containment.plan.action import Action, State, Write, recreated, still_there


def revoke_user_delegation_keys(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    return [Write("POST", target.text, operation="revokeUserDelegationKeys")]


def rotate_keys(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    # A SAS signed with a key stays valid while that key lives. Only the keys still older
    # than the decision: a retry after a lost answer must not rotate one twice.
    return [Write("POST", target.text, {"keyName": name}, operation="regenerateKey") for name in keys_to_rotate(state)]


def keys_named(findings: list[dict], account: str) -> tuple[str, ...]:
    """The account keys the findings on this account (ARM ID) name in their evidence `keys`:
    their union; both where a finding on it names none, or no finding is on it (a person's
    break-glass): what is not known to be safe is rotated. A name that is no account key is
    not one (a finding that names only such names names none)."""
    named: set[str] = set()
    on_account = [f for f in findings if str(f.get("resource_id") or "").lower() == account.lower()]
    for finding in on_account:
        keys = {k for k in (finding.get("evidence") or {}).get("keys") or [] if k in ACCOUNT_KEYS}
        if not keys:
            return ACCOUNT_KEYS
        named |= keys
    return tuple(k for k in ACCOUNT_KEYS if k in named) or ACCOUNT_KEYS


def rotated_by_earlier(earlier: list[list[dict]], findings: list[dict], account: str) -> bool:
    """Whether the rotations earlier decisions planned on the account (one findings list per
    decision) took every key these findings name."""
    taken = {key for decision in earlier for key in keys_named(decision, account)}
    return set(keys_named(findings, account)) <= taken


def keys_to_rotate(state: State) -> list[str]:
    """The keys the decision rotates (keys_named) still created before the decision (all of
    them where a time is unknown): a retry never rotates a key twice, nor the other key."""
    if state.body is None:
        return []
    created = (state.body.get("properties") or {}).get("keyCreationTime") or {}
    decided = clock.instant(state.facts.get("decided_at"))
    target = state.facts.get("target")
    named = keys_named(state.facts.get("findings") or [], target.text if target is not None else "")
    return [name for name in named
            if decided is None or clock.instant(created.get(name)) is None or clock.instant(created[name]) < decided]


def keys_older_than_decision(state: State, settings: Settings) -> bool:
    """Rotation is still needed while a key was created before the decision to rotate it."""
    return bool(keys_to_rotate(state))


ACTIONS = (
    # Invalidates every user-delegation SAS; nothing on the account shows it, so "needed"
    # is decided once, by the claim, and the write is trusted on ARM's 200.
    Action("revoke_user_delegation_keys", (STORAGE_ACCOUNT,), None,
           ("Microsoft.Storage/storageAccounts/revokeUserDelegationKeys/action",),
           revoke_user_delegation_keys, exposed=still_there, verified_by_reading=False, moot=recreated),
    Action("rotate_account_keys", (STORAGE_ACCOUNT,),
           ("storage_keys_listed_by_unallowed_principal", "storage_sas_listed_by_unallowed_principal"),
           ("Microsoft.Storage/storageAccounts/read", "Microsoft.Storage/storageAccounts/regeneratekey/action"),
           rotate_keys, exposed=keys_older_than_decision, moot=recreated, done_by_earlier=rotated_by_earlier),
)
