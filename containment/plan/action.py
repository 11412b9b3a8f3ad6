"""What a containment action is: the rule whose finding it contains, the ARM operations it
needs, and how to plan the writes that contain it from the resource's current state.

Actions are declared in their family's module (storage, keys, roles, nsg, restore) beside
what they fix, and collected by containment.plan.registry. Whether an action is still
needed is the fixed rule's own judgement of the current state (unless the action says
otherwise), so "needed" and "fixed" can never disagree with what detection reports. The
permissions are what infra/'s custom role must grant, and no more.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from containment.core.findings import Finding
from containment.core.ids import ResourceId
from containment.core.records import DecisionRecord, PlannedAction
from containment.core.settings import Settings


@dataclass(frozen=True)
class State:
    """A target as ARM has it now. For an NSG rule, `facts` holds its NSG (judging a rule
    needs the rules around it) and `etag` the NSG's ETag, the precondition of any write."""

    body: dict | None  # None: the resource no longer exists
    facts: dict[str, Any] = field(default_factory=dict)
    etag: str | None = None

    @property
    def evidence(self) -> dict | None:
        """What the ledger keeps as before/after: the whole NSG for a rule, else the body."""
        return self.facts.get("nsg", self.body)


# A Write's If-Match that stands for "the ETag the previous write of this plan left": several
# rules written into one NSG each move its ETag on, and each write must see the one before.
AFTER_PREVIOUS = "after-previous-write"


@dataclass(frozen=True)
class Write:
    method: str  # PATCH, PUT, DELETE, or POST of an `operation` (revokeUserDelegationKeys, regenerateKey)
    resource_id: str
    body: dict[str, Any] | None = None
    if_match: str | None = None  # an ETag, AFTER_PREVIOUS, or None
    operation: str | None = None


Plan = Callable[[State, ResourceId, Settings], list[Write]]


@dataclass(frozen=True)
class Action:
    name: str
    resource_types: tuple[str, ...]
    # The rule whose findings this action contains, or a tuple of the rules (rotating the
    # keys contains both keys listed and SAS listed); None: used by severity (egress) only.
    fixes: str | tuple[str, ...] | None
    permissions: tuple[str, ...]
    plan: Plan
    # Whether the exposure is still there; None: the fixed rule's own judgement.
    exposed: Callable[[State, Settings], bool] | None = None
    # Why a person must approve this action on this target under these settings, or None.
    approval: Callable[[ResourceId, Settings], str | None] = lambda target, settings: None
    # False where nothing ARM returns shows the change (a revocation): ARM's 2xx is the proof.
    verified_by_reading: bool = True
    # Whether a person may ask for it by name (break-glass); restoring is release's alone.
    on_request: bool = True
    # Why the target is no longer the one the decision judged (an ID that now holds another
    # resource), or None: the action is then moot, never carried out on the newcomer.
    moot: Callable[[State, Settings], str | None] | None = None
    # (action, levels up): an action on an ancestor that contains this one's exposure too, so
    # a plan with several of these under one ancestor uses that one write instead.
    covered_by: tuple[str, int] | None = None
    # What is left of a step after earlier decisions of the incident that planned this action
    # on its target (those records, these findings, the step): None, nothing (one leak, one
    # containment; also where this is None); a rotation of key1 leaves the key2 a later
    # finding names (the step, narrowed to it).
    left_by_earlier: Callable[[list[DecisionRecord], list[dict], PlannedAction], PlannedAction | None] | None = None
    # Why a finding leaves this action nothing to act from (a guardrail with no recorded last
    # good body, or no workspace configured to send logs to), or None: such a finding is
    # recorded only, saying why.
    unavailable: Callable[[Finding, Settings], str | None] | None = None

    @property
    def fixed_rules(self) -> tuple[str, ...]:
        """The rules whose findings this action contains, however `fixes` names them."""
        return (self.fixes,) if isinstance(self.fixes, str) else tuple(self.fixes or ())

    def applies_to(self, target: ResourceId) -> bool:
        return any(target.is_type(kind) for kind in self.resource_types)


class CannotContain(RuntimeError):
    """No write can contain this exposure here (it needs a person)."""


def patch(**properties: Any) -> Plan:
    """A plan of one PATCH setting these properties."""
    return lambda state, target, settings: [Write("PATCH", target.text, {"properties": dict(properties)})]


def judged_state(state: State) -> dict | None:
    """The state the decision judged of the target (for an NSG rule: its NSG), if recorded."""
    target = state.facts.get("target")
    recorded = state.facts.get("recorded") or {}
    if target is None:
        return None
    return recorded.get(target.key) or (recorded.get(target.ancestor(1).key) if "nsg" in state.facts else None)


def recreated(state: State, settings: Settings) -> str | None:
    """Why the ID now names another resource than the one judged: deleted and created again
    since (another creationTime for a storage account, another resourceGuid for an NSG)."""
    judged, now = judged_state(state), state.facts.get("nsg", state.body)
    if judged is None or now is None:
        return None
    for marker in ("creationTime", "resourceGuid"):
        was, is_now = ((body.get("properties") or {}).get(marker) for body in (judged, now))
        if was and is_now and was != is_now:
            return f"{now.get('id')} was deleted and created again since it was judged ({marker} {was} is now {is_now})"
    return None


def still_there(state: State, settings: Settings) -> bool:
    """For actions whose need no property shows: needed while the resource exists."""
    return state.body is not None
