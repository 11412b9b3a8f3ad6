"""Every outcome the app records is decided here, and only here: from findings to a
decision (which containment actions, on which resources; act now, record what would be
done, hold for a person, or only report), and what a decision becomes when it is exempt,
refused, carried out or fails. Pure: no I/O. The ledger records what this decides.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from containment.core.findings import SEVERITIES, Finding
from containment.core.ids import parse_resource_id
from containment.core.records import DecisionRecord, PlannedAction
from containment.core.settings import Settings
from containment.plan.registry import ACTIONS, RULES, action_for

OUTCOMES = ("contained", "would-contain", "pending-approval", "reported", "compliant", "exempt",
            "ignored", "failed", "rejected")
# A decision to act is carried out by the containment worker; its record then says
# `contained` or `failed`. CONTAIN is that decision, never a recorded outcome: it is what a
# claim carries while the containment is under way.
CONTAIN = "contain"


@dataclass(frozen=True)
class Decision:
    outcome: str
    reason: str
    findings: tuple[Finding, ...] = ()
    plan: tuple[PlannedAction, ...] = field(default=())
    awaiting: tuple[PlannedAction, ...] = field(default=())  # held back for a person's approval
    own_deployment: bool = False  # found on the app's own deployment: reported to a person, never acted on


def plan_for(findings: list[Finding], settings: Settings) -> tuple[list[PlannedAction], str]:
    """Which actions contain these findings under these settings, and what is only recorded.

    Most rules name the one action that contains them (CONTAINMENT_AUTO_CONTAIN chooses
    which run); egress findings are contained by severity (CONTAINMENT_EGRESS_CONTAINMENT)."""
    plan, contained, not_chosen, no_action, nothing_from = [], set(), set(), set(), set()
    for finding in findings:
        if RULES[finding.rule].contained_by_severity:
            names = settings.egress_containment.get(finding.severity, ())
            (contained if names else not_chosen).add(finding.rule)
        else:
            action = action_for(finding.rule)
            names = (action.name,) if action and finding.rule in settings.auto_contain else ()
            unavailable = action.unavailable(finding, settings) if names and action.unavailable else None
            if unavailable:
                names = ()
                nothing_from.add(f"{finding.rule} ({unavailable})")
            else:
                (contained if names else no_action if action is None else not_chosen).add(finding.rule)
        for name in names:
            step = PlannedAction(name, finding.resource_id)
            if step not in plan:
                plan.append(step)
    plan, fewer = fewest(plan)
    reasons = [f"contain {', '.join(sorted(contained))}" if contained else "", fewer,
               f"recorded only (not chosen for automatic containment): {', '.join(sorted(not_chosen))}"
               if not_chosen else "",
               f"recorded only (no containment action exists): {', '.join(sorted(no_action))}" if no_action else "",
               f"recorded only (nothing to act from): {'; '.join(sorted(nothing_from))}" if nothing_from else ""]
    return plan, "; ".join(r for r in reasons if r)


def fewest(plan: list[PlannedAction]) -> tuple[list[PlannedAction], str]:
    """The plan with the fewest actions that contain the same exposures: steps an action on
    their ancestor also contains (Action.covered_by) give way to it where it is planned
    anyway or replaces two or more of them."""
    covering: dict[PlannedAction, list[PlannedAction]] = {}
    for step in plan:
        cover = ACTIONS[step.action].covered_by
        if cover is not None:
            ancestor = parse_resource_id(step.target).ancestor(cover[1]).text
            covering.setdefault(PlannedAction(cover[0], ancestor), []).append(step)
    chosen = {by: steps for by, steps in covering.items() if by in plan or len(steps) > 1}
    replaced = {step: by for by, steps in chosen.items() for step in steps}
    fewer = []
    for step in plan:
        step = replaced.get(step, step)
        if step not in fewer:
            fewer.append(step)
    why = "; ".join(f"{len(steps)} {steps[0].action} contained by one {by.action} on {by.target}"
                    for by, steps in chosen.items())
    return fewer, why


def approval_needed(step: PlannedAction, settings: Settings) -> str | None:
    if step.action in settings.approval_actions:
        return f"{step.action} waits for a person (CONTAINMENT_APPROVAL_ACTIONS)"
    return ACTIONS[step.action].approval(parse_resource_id(step.target), settings)


def decide(findings: list[Finding], settings: Settings, compliant_because: str | None = None) -> Decision:
    """What to do about these findings. Every detection path (events, the drift sweep, the
    egress scan) decides here, so a finding on the app's own deployment is reported, never
    acted on, whichever path found it."""
    decision = _decide(findings, settings, compliant_because)
    if any(settings.is_own(finding.resource_id) for finding in findings) or any(
            settings.is_own(step.target) for step in decision.plan + decision.awaiting):
        return on_own_deployment(decision)
    return decision


def _decide(findings: list[Finding], settings: Settings, compliant_because: str | None) -> Decision:
    if not findings:
        return Decision("compliant", compliant_because or "no rule found an exposure")
    plan, why = plan_for(findings, settings)
    if not plan:
        return Decision("reported", why, tuple(findings))
    approvals = {step: reason for step in plan if (reason := approval_needed(step, settings))}
    held = "; ".join(sorted(set(approvals.values())))
    runnable = tuple(step for step in plan if step not in approvals)
    awaiting = tuple(step for step in plan if step in approvals)
    if not runnable:
        return Decision("pending-approval", f"{why}: {held}", tuple(findings), awaiting, awaiting)
    if awaiting:
        why += f"; held for approval: {held}"
    return _act(why, tuple(findings), runnable, awaiting, settings)


def _act(why: str, findings: tuple[Finding, ...], plan: tuple[PlannedAction, ...],
         awaiting: tuple[PlannedAction, ...], settings: Settings) -> Decision:
    if not settings.enforcing:
        return Decision("would-contain", f"{why} (CONTAINMENT_MODE is dry-run: nothing changed)", findings, plan,
                        awaiting)
    return Decision(CONTAIN, why, findings, plan, awaiting)


def within_incident(decision: Decision, earlier: list[DecisionRecord]) -> Decision:
    """One leak, one containment: the actions earlier decisions of this incident already took
    (or hold for a person) on the same targets are not planned again, so keys are revoked
    once, and a rotation keeps only the keys not yet taken (Action.left_by_earlier); with
    nothing left, the finding is recorded as already contained, linked to those decisions,
    and changes nothing."""
    if not earlier or not (decision.plan or decision.awaiting):
        return decision
    found = [finding.as_dict() for finding in decision.findings]
    left: dict[PlannedAction, PlannedAction | None] = {}
    for step in decision.plan + decision.awaiting:
        by = [record for record in earlier if any(
            (held["action"], held["target"].lower()) == (step.action, step.target.lower())
            for held in record.plan + record.awaiting_approval)]
        hook = ACTIONS[step.action].left_by_earlier
        left[step] = step if not by else None if hook is None else hook(by, found, step)
    plan = tuple(rest for step in decision.plan if (rest := left[step]) is not None)
    awaiting = tuple(rest for step in decision.awaiting if (rest := left[step]) is not None)
    if (plan, awaiting) == (decision.plan, decision.awaiting):
        return decision
    linked = ", ".join(record.key for record in earlier)
    if not plan and not awaiting:
        return replace(decision, outcome="reported", plan=(), awaiting=(), reason=(
            f"already contained in this incident by decision {linked}: nothing changed, nothing spent; "
            f"would have: {decision.reason}"))
    done = sorted({step.action if rest is None else f"{step.action} of all but {', '.join(rest.keys or ())}"
                   for step, rest in left.items() if rest != step})
    reason = decision.reason + f"; already done in this incident by decision {linked}: " + ", ".join(done)
    outcome = decision.outcome if plan else "pending-approval"
    return replace(decision, outcome=outcome, reason=reason, plan=plan if plan else awaiting, awaiting=awaiting)


def not_holding(contained: DecisionRecord, finding: Finding) -> Decision:
    """Reads that continue after a containment: it is not holding, which a person must know
    at once (a key, a network path or a grant it did not reach)."""
    return Decision("failed", f"containment by decision {contained.key} at {contained.contained_at} is not holding: "
                              f"{finding.summary}", (finding,))


# However mild its findings, an exposure of the app's own deployment is at least this severe:
# it may be the ledger (the evidence) that is exposed, and nothing but a person will contain it.
OWN_DEPLOYMENT_SEVERITY = "high"


def on_own_deployment(decision: Decision) -> Decision:
    """Findings on the app's own deployment (CONTAINMENT_OWN_SCOPES): reported and notified
    for a person to act on, never acted on here. Containing the app's own storage could cut
    it off from its ledger and its queue; the containment worker and break-glass refuse its
    resources too. A compliant decision stays compliant: there is nothing to report."""
    if not decision.findings:
        return decision
    return replace(decision, outcome="reported", plan=(), awaiting=(), own_deployment=True, reason=(
        "the app's own deployment (CONTAINMENT_OWN_SCOPES): reported, not acted on; the app never changes its own "
        "resources (containing them could cut it off from its ledger and queue), so a person must act; "
        f"would have: {decision.reason}"))


def waits_for_second(reason: str, finding: Finding) -> Decision:
    """What is destructive or broad waits for a second operator: on the record, listed as
    pending, notified, until another person with the role settles it."""
    return Decision("pending-approval", reason, (finding,))


def by_person(why: str, plan: tuple[PlannedAction, ...], settings: Settings,
              findings: tuple[Finding, ...] = ()) -> Decision:
    """What a person asked for (an approval, break-glass, a release): carried out as asked,
    through the same containment path; recorded only in dry-run."""
    return _act(why, findings, plan, (), settings)


def exempted(decision: Decision, exemption: dict) -> Decision:
    """A finding on a scope a person exempted: recorded, not acted on."""
    return replace(decision, outcome="exempt", plan=(), awaiting=(), reason=(
        f"exempt until {exemption['expires_at']} ({exemption['scope']}): {exemption['reason']}, owner "
        f"{exemption['owner']}; would have: {decision.reason}"))


def covers(exemption: dict, finding: Finding) -> bool:
    """Whether an exemption covers a finding: its resource under the scope, and its rule
    among the exemption's rules (a release exempts the exposures it released, not others)."""
    scope, resource = exemption["scope"].lower(), finding.resource_id.lower()
    return (resource == scope or resource.startswith(scope + "/")) and (
        exemption.get("rules") is None or finding.rule in exemption["rules"])


def exempting(decision: Decision, exemptions: list[dict]) -> Decision:
    """The decision with what active exemptions cover held back: all of it `exempt` when they
    cover every finding; otherwise the actions on the covered findings' resources, and any
    ancestor action that would contain them too (an account write over a released
    container), are dropped, and the rest stands."""
    covered = [(finding, exemption) for finding in decision.findings
               for exemption in [next((e for e in exemptions if covers(e, finding)), None)] if exemption]
    if not covered:
        return decision
    exemption = covered[0][1]
    if len(covered) == len(decision.findings):
        return exempted(decision, exemption)
    held = {finding.resource_id.lower() for finding, _ in covered}
    for finding, _ in covered:
        action = action_for(finding.rule)
        if action is not None and action.covered_by is not None:
            held.add(parse_resource_id(finding.resource_id).ancestor(action.covered_by[1]).key)
    plan = tuple(step for step in decision.plan if step.target.lower() not in held)
    awaiting = tuple(step for step in decision.awaiting if step.target.lower() not in held)
    reason = (f"{decision.reason}; exempt until {exemption['expires_at']} ({exemption['scope']}: "
              f"{exemption['reason']}): {', '.join(sorted({f.rule for f, _ in covered}))}, and no action on "
              f"{', '.join(sorted(held))}")
    if plan or awaiting or decision.outcome not in (CONTAIN, "would-contain", "pending-approval"):
        return replace(decision, plan=plan if plan else awaiting, awaiting=awaiting, reason=reason,
                       outcome=decision.outcome if plan else ("pending-approval" if awaiting else decision.outcome))
    return replace(decision, outcome="exempt", plan=(), awaiting=(), reason=reason)


def rejected(reason: str) -> Decision:
    """Input the app cannot trust or must not act on: an unreadable event, a subscription
    out of scope, a request nobody decided."""
    return Decision("rejected", reason)


def ignored(reason: str) -> Decision:
    """Not the app's business: its own resources or changes, a resource gone or unprotected."""
    return Decision("ignored", reason)


def failed(reason: str) -> Decision:
    return Decision("failed", reason)


def recovered(operation: str, scope: str, failure: str, cause: str, count: int, first_at: str,
              last_at: str) -> Decision:
    """What failed the same way, run after run, works again: on the record only (a person who
    was told of the failure learns of this with the other reported decisions)."""
    times = "once" if count == 1 else f"{count} times"
    what = f"the {operation.replace('_', ' ')} works again" + (f" for {scope}" if scope else "")
    return Decision("reported", f"{what}: the failure recorded as {failure} ({cause}) happened {times}, "
                                f"first at {first_at}, last at {last_at}; the same failure from now on is recorded anew")


def not_carried_out(reason: str, findings: tuple[Finding, ...] = ()) -> Decision:
    """A person denied it, an approval expired, or nothing was left to do: on the record only."""
    return Decision("reported", reason, findings)


def recorded(record: DecisionRecord, decision: Decision, state: dict[str, dict] | None = None) -> DecisionRecord:
    """The record of a decision: the outcome, why, the findings and the plan, and the state read."""
    findings = [finding.as_dict() for finding in decision.findings] or record.findings
    severities = [f["severity"] for f in findings] + ([OWN_DEPLOYMENT_SEVERITY] if decision.own_deployment else [])
    full_evidence = {f.evidence["digest"]: f.detail for f in decision.findings if f.detail is not None} \
        if decision.findings else record.full_evidence
    return replace(
        record, outcome=decision.outcome, reason=decision.reason, findings=findings, full_evidence=full_evidence,
        rules=sorted({finding["rule"] for finding in findings}),
        severity=max(severities, key=SEVERITIES.index, default=None), own_deployment=decision.own_deployment,
        plan=[step.as_dict() for step in decision.plan], actions=[step.action for step in decision.plan],
        awaiting_approval=[step.as_dict() for step in decision.awaiting],
        before=record.before if state is None else state)


# -- what becomes of a decision the containment worker takes on ---------------------------------
def held_by_budget(claimed: DecisionRecord, needed: int, spent: int, limit: int, settings: Settings,
                   high: bool) -> DecisionRecord:
    """Beyond the blast-radius limit a person decides: a bad threshold must not lock down the
    estate. All of a decision's actions or none: it is held whole, saying what it needed and
    what was left."""
    reserve = "" if high else (f" (the last {settings.high_severity_reserve} of CONTAINMENT_MAX_ACTIONS_PER_HOUR="
                               f"{settings.max_actions_per_hour} are kept for high and critical findings: "
                               "CONTAINMENT_HIGH_SEVERITY_RESERVE)")
    return replace(claimed, outcome="pending-approval",
                   reason=claimed.reason + f"; held by the blast-radius limit: it needs {needed} containment "
                                           f"action(s), and {spent} of the {limit} an hour allows{reserve} are spent "
                                           "in the last hour",
                   awaiting_approval=claimed.awaiting_approval + claimed.plan, actions=[], plan=[])


def carried_out(claimed: DecisionRecord, before: dict, after: dict, changed: bool, at: str) -> DecisionRecord:
    # The contract's outcomes have no "released": a release is recorded as a report of what
    # was restored (its operation says release). What detection read stays beside what the
    # worker read before acting (its targets as they were then): the account a role grant
    # covers, say, whose tags say what the dataset is (containment.record.dataset_context).
    return replace(claimed, outcome="reported" if claimed.operation == "release" else "contained",
                   reason=claimed.reason + ("" if changed else " (already contained when the request ran)"),
                   before={**claimed.before, **before}, after=after, contained_at=at)


def nothing_to_contain(claimed: DecisionRecord, missing: list[str]) -> DecisionRecord:
    """Every target was gone when the worker read it: nothing was contained, so the record
    must not say contained (a break-glass on an ID that does not exist)."""
    return replace(claimed, outcome="reported",
                   reason=claimed.reason + f"; nothing to contain: {', '.join(missing)} does not exist")


def no_longer_judged(claimed: DecisionRecord, reasons: list[str]) -> DecisionRecord:
    """The target is no longer what the decision judged (an approval a day later, a grant
    replaced under the same ID): moot, nothing done, on the record with why."""
    return replace(claimed, outcome="reported",
                   reason=claimed.reason + f"; moot, nothing done: {'; '.join(reasons)}")


def containment_failed(claimed: DecisionRecord, reason: str) -> DecisionRecord:
    return replace(claimed, outcome="failed", reason=reason)
