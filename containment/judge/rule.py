"""What a rule is: a small pure function with its ID, severity and the resource type it
judges, declared in its family's module and collected by containment.judge.registry.

A check is pure: (resource JSON, context) -> None when compliant, or (summary, evidence),
or (summary, bounded evidence, the full evidence it summarises).
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

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"rule {self.id}: severity {self.severity!r} is not one of {SEVERITIES}")
