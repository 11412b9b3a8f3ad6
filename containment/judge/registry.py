"""Every rule the app knows, collected from the family modules that declare them. Importing
this module is how a rule is found: nothing registers itself as a side effect."""
from __future__ import annotations

from containment.core.findings import Finding
from containment.judge import egress, key_vault, keys, nsg, replication, roles, storage
from containment.judge.rule import Context, Rule

FAMILIES = (storage, replication, nsg, roles, keys, egress, key_vault)
RULES: dict[str, Rule] = {}
for _family in FAMILIES:
    for _rule in _family.RULES:
        if _rule.id in RULES:
            raise ValueError(f"rule {_rule.id} is declared twice")
        RULES[_rule.id] = _rule


def judge(resource_type: str, body: dict, context: Context) -> list[Finding]:
    """The findings of every rule for this resource type."""
    findings = []
    for candidate in RULES.values():
        if candidate.resource_type.lower() != resource_type.lower():
            continue
        verdict = candidate.check(body, context)
        if verdict is not None:
            summary, evidence, *full = verdict
            findings.append(Finding(candidate.id, candidate.severity, body.get("id", ""), summary, evidence,
                                    *full, weakness=candidate.weakness))
    return findings
