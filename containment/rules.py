"""The rule registry: every detector rule is a small function registered with its ID,
severity and the resource type it judges (the action that contains it names the rule).

Rules are pure: (resource JSON, context) -> None when compliant, or (summary, evidence).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from containment.findings import SEVERITIES, Finding
from containment.scope import Protection
from containment.settings import Settings


@dataclass(frozen=True)
class Context:
    settings: Settings
    protection: Protection
    # What the assessor read besides the resource itself (a role assignment's role
    # definition, the protected resources its scope covers), for rules that need it.
    facts: dict[str, Any] = field(default_factory=dict)


Check = Callable[[dict, Context], "tuple[str, dict[str, Any]] | None"]


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    resource_type: str
    check: Check
    # Contained by the actions CONTAINMENT_EGRESS_CONTAINMENT maps its severity to, rather
    # than by the one action that names it.
    contained_by_severity: bool = False


RULES: dict[str, Rule] = {}


def rule(rule_id: str, *, severity: str, resource_type: str, contained_by_severity: bool = False):
    assert severity in SEVERITIES and rule_id not in RULES
    def register(check: Check) -> Check:
        RULES[rule_id] = Rule(rule_id, severity, resource_type, check, contained_by_severity)
        return check
    return register


def judge(resource_type: str, body: dict, context: Context) -> list[Finding]:
    findings = []
    for candidate in RULES.values():
        if candidate.resource_type.lower() != resource_type.lower():
            continue
        verdict = candidate.check(body, context)
        if verdict is not None:
            summary, evidence = verdict
            findings.append(Finding(candidate.id, candidate.severity, body.get("id", ""), summary, evidence))
    return findings
