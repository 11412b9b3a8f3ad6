"""The guardrails around synthetic data, judged: the diagnostic settings that send a protected
account's blob reads to the workspace the app scans, and the policy assignments (and their
exemptions) whose scope covers protected data.

Every finding here is a weakness (containment.judge.rule): none shows anyone able to reach
the data who could not before. But each is severe, for what it hides or lets through:
- a diagnostic setting removed, or no longer sending StorageRead to the app's workspace: the
  app's own signal is gone, and a copy of the data would go unseen by the egress scan
  (containment.detect.egress_scan reads StorageBlobLogs, which only a diagnostic setting fills:
  https://learn.microsoft.com/azure/storage/blobs/monitor-blob-storage);
- a policy assignment removed or switched to DoNotEnforce: "The policy effect is not enforced
  during resource creation or update" (the enforcementMode enum of the 2025-03-01 spec), so a
  control that refused, say, public access or keys without a customer key no longer refuses;
  or weakened otherwise: a notScope over protected data, or what it enforces (definition,
  parameters, overrides, resource selectors, notScopes) changed against its last good body;
- an exemption on protected data: the same control waived there.
Whoever then opens the data is judged by the storage, role and network rules, as exposures.

The assessor (containment.detect.guardrails) gives the facts: whether the guardrail is gone
(`removed`), the last good body the app recorded (`last_good`: {"body", "kept_at"} or None),
the workspace the app scans (`workspace`: its resource ID, or None where not set), for a
diagnostic setting the other setting of its blob service that sends StorageRead there
(`delivered_by`, or None), and for a policy what protected data its scope covers (`covers`).
"""
from __future__ import annotations

from containment.core import clock
from containment.core.ids import DIAGNOSTIC_SETTING, POLICY_ASSIGNMENT, POLICY_EXEMPTION
from containment.judge.rule import Context, Rule

# The log category whose rows are the reads the egress scan judges (StorageBlobLogs
# OperationName GetBlob and the rest: https://learn.microsoft.com/azure/storage/blobs/monitor-blob-storage-reference),
# and the category group that includes every category of the resource ("allLogs":
# https://learn.microsoft.com/azure/azure-monitor/essentials/diagnostic-settings#category-groups).
# Whether "audit" includes StorageRead for blob services is unverified: not counted (fail closed).
READS = "storageread"
ALL_LOGS = "alllogs"


def _properties(body: dict) -> dict:
    properties = body.get("properties")
    return properties if isinstance(properties, dict) else {}


def covers_one_another(scope: str, other: str) -> bool:
    """Whether one scope is at, above or below the other (a policy's reach over data)."""
    scope, other = scope.lower().rstrip("/"), other.lower().rstrip("/")
    return scope == other or scope.startswith(other + "/") or other.startswith(scope + "/")


def _restorable(context: Context) -> dict:
    """What the evidence says about restoring: the last good body and when it was kept, or
    that there is none, so that nothing can be put back from it."""
    last = context.facts.get("last_good")
    if not last:
        return {"lastGood": None, "restore": "no last good body was recorded for this guardrail (the drift sweep and "
                                              "compliant events keep one): nothing to restore from"}
    return {"lastGood": last}


def sends_reads(setting: dict, workspace: str | None) -> tuple[bool, str]:
    """Whether a diagnostic setting sends StorageRead to the app's workspace, and why not."""
    properties = _properties(setting)
    enabled = {str(entry.get("category") or entry.get("categoryGroup") or "").lower()
               for entry in properties.get("logs") or [] if isinstance(entry, dict) and entry.get("enabled") is True}
    if not enabled & {READS, ALL_LOGS}:
        return False, "no StorageRead category (nor the allLogs group) is enabled"
    target = str(properties.get("workspaceId") or "")
    if not target:
        return False, "it sends to no Log Analytics workspace"
    if workspace and target.lower() != workspace.lower():
        return False, (f"it sends to workspace {target}, not to the one the app scans "
                       f"(CONTAINMENT_LOG_WORKSPACE_RESOURCE_ID {workspace})")
    return True, ""


# A diagnostic setting's destinations other than a workspace (the DiagnosticSettings
# properties of the 2021-05-01-preview spec; eventHubName names a hub of the rule's namespace).
OTHER_DESTINATIONS = ("storageAccountId", "eventHubAuthorizationRuleId", "eventHubName", "serviceBusRuleId",
                      "marketplacePartnerId")
NEEDS_WORKSPACE = ("restoring a diagnostic setting needs CONTAINMENT_LOG_WORKSPACE_RESOURCE_ID (the workspace it "
                   "sends to), which is empty: no last good body is kept and nothing is restored")


def unkeepable_setting(setting: dict, workspace: str | None) -> str | None:
    """Why a diagnostic setting may not be kept as the body a removed or changed one is
    restored from, or None. Only one whose only destination is the configured workspace is
    kept: a kept Event Hub, storage account or partner would be someone's copy of the logs,
    put back by the app."""
    if not workspace:
        return NEEDS_WORKSPACE
    sending, why = sends_reads(setting, workspace)
    if not sending:
        return why
    others = [name for name in OTHER_DESTINATIONS if _properties(setting).get(name)]
    if others:
        return f"it also sends to {', '.join(others)}: only a setting whose only destination is the app's workspace is kept"
    return None


def _diagnostic_restorable(context: Context) -> dict:
    restorable = _restorable(context)
    if not context.facts.get("workspace"):
        restorable["restore"] = NEEDS_WORKSPACE
    return restorable


def diagnostic_setting_removed(setting: dict, context: Context):
    if not context.facts.get("removed") or context.facts.get("delivered_by"):
        return None
    return ("the diagnostic setting that sent this protected account's blob logs was deleted and no other setting of "
            "its blob service sends StorageRead where the app looks: reads of the data are no longer logged, and a copy "
            "would go unseen by the egress scan",
            {"diagnosticSetting": setting.get("id"), **_diagnostic_restorable(context)})


def diagnostic_setting_not_sending_reads(setting: dict, context: Context):
    """Judged with the blob service's other settings: one that sends no reads is a finding
    only where no setting of the blob service does (a SIEM's StorageDelete-only setting
    beside the app's is nothing)."""
    if context.facts.get("removed") or context.facts.get("delivered_by"):
        return None
    sending, why = sends_reads(setting, context.facts.get("workspace"))
    if sending:
        return None
    properties = _properties(setting)
    return (f"no diagnostic setting of this protected account's blob service sends its reads where the app looks; "
            f"this one: {why}",
            {"diagnosticSetting": setting.get("id"), "workspaceId": properties.get("workspaceId"),
             "logs": properties.get("logs") or [], "expectedWorkspace": context.facts.get("workspace"),
             **_diagnostic_restorable(context)})


# What an assignment enforces, beside its enforcementMode (PolicyAssignmentProperties,
# 2025-03-01): which definition, with which parameters and overrides of its effect, on which
# resources (resourceSelectors) and where not (notScopes). Any of them changed can waive it.
ENFORCING = ("policyDefinitionId", "parameters", "overrides", "resourceSelectors", "notScopes")


def _compared(field: str, value):
    """A field as compared: absent, null and empty alike; notScopes in any order or case."""
    if not value:
        return None
    if field == "notScopes" and isinstance(value, list):
        return sorted(str(scope).lower().rstrip("/") for scope in value)
    return value


def weakened_fields(assignment: dict, last_good: dict | None, covers: list[str]) -> list[str]:
    """How a policy assignment enforces less than it did: DoNotEnforce, a notScope over
    protected data (not enforced there), and against its last good body any change of what
    it enforces. Empty: enforced as it was."""
    properties = _properties(assignment)
    fields = ["enforcementMode"] if properties.get("enforcementMode") == "DoNotEnforce" else []
    if last_good is not None:
        was = _properties(last_good)
        fields += [field for field in ENFORCING if _compared(field, properties.get(field)) != _compared(field, was.get(field))]
    if "notScopes" not in fields and any(covers_one_another(str(scope), covered)
                                         for scope in properties.get("notScopes") or [] for covered in covers):
        fields.append("notScopes")
    return fields


def _assignment_evidence(assignment: dict, context: Context) -> dict:
    properties = _properties(assignment)
    return {"policyAssignment": assignment.get("id"), "scope": properties.get("scope"),
            "policyDefinitionId": properties.get("policyDefinitionId"), "displayName": properties.get("displayName"),
            "covers": context.facts.get("covers") or [], **_restorable(context)}


def policy_assignment_removed(assignment: dict, context: Context):
    if not context.facts.get("removed"):
        return None
    return ("a policy assignment whose scope covers protected data was deleted: the control it enforced no longer "
            "applies there", _assignment_evidence(assignment, context))


def policy_assignment_not_enforced(assignment: dict, context: Context):
    if context.facts.get("removed"):
        return None
    last = context.facts.get("last_good")
    fields = weakened_fields(assignment, last["body"] if last else None, context.facts.get("covers") or [])
    if not fields:
        return None
    properties = _properties(assignment)
    return (f"a policy assignment whose scope covers protected data is no longer enforced as it was: {', '.join(fields)} "
            + ("(DoNotEnforce: its effect is not enforced when resources there are created or changed)"
               if "enforcementMode" in fields else "changed against its last good body or excluding protected data"),
            {**_assignment_evidence(assignment, context), "weakened": fields,
             **{field: properties.get(field) for field in ENFORCING if field in fields}})


def policy_exemption_on_protected_data(exemption: dict, context: Context):
    if context.facts.get("removed"):
        return None
    properties = _properties(exemption)
    expires = clock.instant(properties.get("expiresOn"))
    if expires is not None and expires <= clock.now():
        return None  # expired: it exempts nothing any more
    return (f"a policy exemption ({properties.get('exemptionCategory')}) waives policy assignment "
            f"{properties.get('policyAssignmentId')} on protected data"
            + (f" until {properties.get('expiresOn')}" if expires else ", with no expiry"),
            {"policyExemption": exemption.get("id"), "policyAssignmentId": properties.get("policyAssignmentId"),
             "exemptionCategory": properties.get("exemptionCategory"), "expiresOn": properties.get("expiresOn"),
             "policyDefinitionReferenceIds": properties.get("policyDefinitionReferenceIds"),
             "covers": context.facts.get("covers") or []})


RULES = (
    Rule("diagnostic_setting_removed", "high", DIAGNOSTIC_SETTING, diagnostic_setting_removed, weakness=True),
    Rule("diagnostic_setting_not_sending_reads", "high", DIAGNOSTIC_SETTING, diagnostic_setting_not_sending_reads,
         weakness=True),
    Rule("policy_assignment_removed", "high", POLICY_ASSIGNMENT, policy_assignment_removed, weakness=True),
    Rule("policy_assignment_not_enforced", "high", POLICY_ASSIGNMENT, policy_assignment_not_enforced, weakness=True),
    Rule("policy_exemption_on_protected_data", "medium", POLICY_EXEMPTION, policy_exemption_on_protected_data,
         weakness=True),
)
