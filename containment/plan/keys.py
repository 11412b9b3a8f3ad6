"""Taking back what keys and SAS tokens hand out: revoke every user-delegation key, rotate
the account keys that leaked. Egress findings call for these by severity
(CONTAINMENT_EGRESS_CONTAINMENT); rotating also contains the key-access rules
(containment.judge.keys): keys listed, or a SAS signed with them, by a principal not allowed to.

Only the keys the decision's findings on the account name are rotated (evidence `keys`: the
key that signed the SAS or request used, from AuthenticationHash, or the key that was
listed): their union, and both where any finding on the account names none (unknown). The
other key keeps working, so whoever uses it legitimately is not broken by the containment.
A rotation step carries the keys an earlier decision of the incident left to rotate
(containment.plan.decisions.within_incident). A key created after the exposure (the
findings' earliest eventTime or egress window start) is not the key that leaked: it is
never rotated, so a second decision on one leak, approved after the first, changes nothing."""
from __future__ import annotations

from dataclasses import replace

from containment.core import clock
from containment.core.findings import ACCOUNT_KEYS, exposed_since
from containment.core.ids import STORAGE_ACCOUNT, ResourceId
from containment.core.records import DecisionRecord, PlannedAction
from containment.core.settings import Settings
from containment.plan.action import Action, State, Write, recreated, still_there


def revoke_user_delegation_keys(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    return [Write("POST", target.text, operation="revokeUserDelegationKeys")]


def rotate_keys(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    # A SAS signed with a key stays valid while that key lives. Only the keys still older
    # than the exposure: a retry after a lost answer must not rotate one twice.
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


def keys_of(step: dict | PlannedAction, findings: list[dict]) -> tuple[str, ...]:
    """The keys a rotation step rotates: those it carries (what an earlier decision of the
    incident left), else those the findings name (keys_named). The worker and the impact
    preview both read this, so the approver is shown the keys that are rotated."""
    step = step if isinstance(step, PlannedAction) else PlannedAction.of(step)
    if step.keys is not None:
        return tuple(k for k in ACCOUNT_KEYS if k in step.keys)
    return keys_named(findings, step.target)


def left_by_earlier(earlier: list[DecisionRecord], findings: list[dict], step: PlannedAction) -> PlannedAction | None:
    """The rotation still to do after earlier decisions of the incident that planned one on
    the account: the keys these findings name less those the earlier ones took or hold for a
    person; None when none is left. A rotation carried out before these findings' exposure
    took the keys that were, not the ones now in a stranger's hands: it takes none (one still
    held rotates, when approved, the keys there are then)."""
    since = clock.instant(exposed_since(findings))
    carried_out_before = {record.key for record in earlier if since is not None
                          and (clock.instant(record.contained_at) or since) < since}
    taken = {key for record in earlier
             for held in record.awaiting_approval + ([] if record.key in carried_out_before else record.plan)
             if (held["action"], held["target"].lower()) == (step.action, step.target.lower())
             for key in keys_of(held, record.findings)}
    named = keys_of(step, findings)
    left = tuple(key for key in named if key not in taken)
    return None if not left else step if left == named else replace(step, keys=left)


def keys_to_rotate(state: State) -> list[str]:
    """The keys the step rotates (keys_of) still created before the exposure (all of them
    where a time is unknown): a retry never rotates a key twice, nor does a second decision
    on the same leak, nor is the other key rotated."""
    if state.body is None:
        return []
    created = (state.body.get("properties") or {}).get("keyCreationTime")
    created = created if isinstance(created, dict) else {}  # unreadable: rotate what is named
    exposed = clock.instant(state.facts.get("exposed_at"))
    target = state.facts.get("target")
    step = PlannedAction("rotate_account_keys", target.text if target is not None else "", state.facts.get("keys"))
    return [name for name in keys_of(step, state.facts.get("findings") or [])
            if exposed is None or clock.instant(created.get(name)) is None or clock.instant(created[name]) < exposed]


def keys_older_than_exposure(state: State, settings: Settings) -> bool:
    """Rotation is still needed while a key it rotates was created before the exposure."""
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
           rotate_keys, exposed=keys_older_than_exposure, moot=recreated, left_by_earlier=left_by_earlier),
)
