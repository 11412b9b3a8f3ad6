"""What a rule is: a small pure function with its ID, severity and the resource type it
judges, declared in its family's module and collected by containment.judge.registry.

A check is pure: (resource JSON, context) -> None when compliant, or (summary, evidence),
or (summary, bounded evidence, the full evidence it summarises).

A rule's finding is an *exposure* or a *weakness*. A weakness is a finding that shows no one
who should not reach the data able to reach it: a control is weaker than it should be (no SAS
expiry policy, TLS 1.0 accepted, every network admitted where a credential is still needed),
but whoever reads the data must still hold what the other rules judge (a key, a SAS, a role,
a public container). Anything else is an exposure, and so is any finding whose reach the app
cannot rule out (fail closed). Only an exposure can be a personal-data breach, so only an
exposure starts an incident's GDPR Article 33 clock (containment.record.incidents).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from containment.core.findings import SEVERITIES
from containment.core.settings import Settings
from containment.judge.scope import Protection


@dataclass(frozen=True)
class Context:
    settings: Settings
    protection: Protection
    # What the assessor read besides the resource itself (a role assignment's role
    # definition, the protected resources its scope covers), for rules that need it.
    facts: dict[str, Any] = field(default_factory=dict)


Check = Callable[[dict, Context], "tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], dict[str, Any]] | None"]


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    resource_type: str
    check: Check
    # Contained by the actions CONTAINMENT_EGRESS_CONTAINMENT maps its severity to, rather
    # than by the one action that names it.
    contained_by_severity: bool = False
    # A weakened control, not an exposure (see above): its findings say so ("weakness": true).
    weakness: bool = False

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"rule {self.id}: severity {self.severity!r} is not one of {SEVERITIES}")
