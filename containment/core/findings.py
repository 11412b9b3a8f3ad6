"""A finding: one rule broken by one resource, with the evidence that shows it."""
from __future__ import annotations

import hashlib
import json
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
    # Where `evidence` is bounded (a summary of many callers), the full evidence it
    # summarises; its digest is evidence["digest"]. The record keeps it by that digest.
    detail: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": self.severity, "resource_id": self.resource_id,
                "summary": self.summary, "evidence": self.evidence}


def evidence_digest(full: dict[str, Any]) -> str:
    """"sha256:<hex>" of the full evidence as canonical JSON (keys sorted, no spaces), so
    anyone holding it can check it against the finding."""
    canonical = json.dumps(full, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
