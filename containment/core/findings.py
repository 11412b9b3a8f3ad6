"""A finding: one rule broken by one resource, with the evidence that shows it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    resource_id: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": self.severity, "resource_id": self.resource_id,
                "summary": self.summary, "evidence": self.evidence}
