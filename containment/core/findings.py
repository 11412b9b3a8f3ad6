"""A finding: one rule broken by one resource, with the evidence that shows it."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from containment.core import clock

SEVERITIES = ("low", "medium", "high", "critical")
# The storage account key names a finding's evidence `keys` may hold: the keyName of Storage Accounts -
# Regenerate Key (https://learn.microsoft.com/rest/api/storagerp/storage-accounts/regenerate-key), and
# what AuthenticationHash names as `key1(...)`/`key2(...)` (the queries' credential block).
ACCOUNT_KEYS = ("key1", "key2")


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
    # A weakened control, not an exposure (containment.judge.rule): no Article 33 clock of its own.
    weakness: bool = False

    def as_dict(self) -> dict[str, Any]:
        found = {"rule": self.rule, "severity": self.severity, "resource_id": self.resource_id,
                 "summary": self.summary, "evidence": self.evidence}
        # Written only where true: a finding without it (every record before it existed) is an exposure.
        return {**found, "weakness": True} if self.weakness else found


def is_weakness(finding: dict[str, Any]) -> bool:
    """Whether a recorded finding says it is a weakness; anything else counts as an exposure."""
    return finding.get("weakness") is True


def evidence_digest(full: dict[str, Any]) -> str:
    """"sha256:<hex>" of the full evidence as canonical JSON (keys sorted, no spaces), so
    anyone holding it can check it against the finding."""
    canonical = json.dumps(full, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def exposed_since(findings: list[dict[str, Any]]) -> str | None:
    """When the findings first show the exposure, as their evidence says: the earliest
    `eventTime` (a key listing) or `start` (an egress window), None where none says. What was
    created after it (a key rotated since) is not what leaked."""
    times = [moment for finding in findings for name in ("eventTime", "start")
             if (moment := clock.instant((finding.get("evidence") or {}).get(name))) is not None]
    return clock.iso(min(times)) if times else None
