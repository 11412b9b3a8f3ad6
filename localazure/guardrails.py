"""Guardrails as ARM keeps them: policy assignments and policy exemptions at any scope, and
diagnostic settings on a resource, all extension resources (`{scope}/providers/...`).

What is served, from the spec subsets in localazure/specs (README there names each source):
policy assignments at 2025-03-01 (policyAssignments.subset.json), exemptions at
2024-12-01-preview (policyExemptions.subset.json), diagnostic settings at 2021-05-01-preview
(diagnosticsSettings_API.subset.json). The required fields and enums are read from them.
Each refusal names its source; a code or message no source shows is marked unverified.
"""
from __future__ import annotations

import copy
import json
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from localazure.refusals import Refused

_SPECS = Path(__file__).with_name("specs") / "specification"
_POLICY = _SPECS / "resources/resource-manager/Microsoft.Authorization/policy"
_ASSIGNMENTS = json.loads((_POLICY / "stable/2025-03-01/policyAssignments.subset.json").read_text())
_EXEMPTIONS = json.loads((_POLICY / "preview/2024-12-01-preview/policyExemptions.subset.json").read_text())

POLICY_ASSIGNMENT = "microsoft.authorization/policyassignments"
POLICY_EXEMPTION = "microsoft.authorization/policyexemptions"
DIAGNOSTIC_SETTING = "microsoft.insights/diagnosticsettings"
TYPES = {POLICY_ASSIGNMENT: "Microsoft.Authorization/policyAssignments",
         POLICY_EXEMPTION: "Microsoft.Authorization/policyExemptions",
         DIAGNOSTIC_SETTING: "Microsoft.Insights/diagnosticSettings"}
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"

_ENFORCEMENT_MODES = _ASSIGNMENTS["definitions"]["PolicyAssignmentProperties"]["properties"]["enforcementMode"]["enum"]
_EXEMPTION_PROPERTIES = _EXEMPTIONS["definitions"]["PolicyExemptionProperties"]
_EXEMPTION_CATEGORIES = _EXEMPTION_PROPERTIES["properties"]["exemptionCategory"]["enum"]
# Read-only in the spec: never taken from a request body.
_ASSIGNMENT_READ_ONLY = {name for name, schema in
                         _ASSIGNMENTS["definitions"]["PolicyAssignmentProperties"]["properties"].items()
                         if schema.get("readOnly")}

# "Each resource can have up to five diagnostic settings."
# (https://learn.microsoft.com/azure/azure-monitor/essentials/diagnostic-settings)
MAX_DIAGNOSTIC_SETTINGS = 5
# What a blob service's diagnostic setting may name: the log categories StorageRead,
# StorageWrite, StorageDelete and the category groups allLogs and audit
# (https://learn.microsoft.com/azure/azure-monitor/reference/supported-logs/microsoft-storage-storageaccounts-blobservices-logs),
# the metric categories Transaction and Capacity (supported metrics for blobServices).
BLOB_LOG_CATEGORIES = {"storageread", "storagewrite", "storagedelete"}
BLOB_CATEGORY_GROUPS = {"alllogs", "audit"}
BLOB_METRIC_CATEGORIES = {"transaction", "capacity"}
_DESTINATIONS = ("workspaceId", "storageAccountId", "eventHubAuthorizationRuleId", "marketplacePartnerId")


def _bad_request(message: str) -> Refused:
    # The code for a body the policy RP rejects on validation is unverified.
    return Refused(400, "InvalidRequestContent", message)


def not_found(kind: str, path: str) -> Refused:
    name = path.rsplit("/", 1)[-1]
    if kind == POLICY_ASSIGNMENT:
        return Refused(404, "PolicyAssignmentNotFound", f"The policy assignment '{name}' is not found.")  # unverified
    if kind == POLICY_EXEMPTION:
        return Refused(404, "PolicyExemptionNotFound", f"The policy exemption '{name}' is not found.")  # unverified
    return Refused(404, "ResourceNotFound", f"The diagnostic setting '{name}' doesn't exist.")  # unverified


def scope_of(path: str) -> str:
    """The part of an extension resource's ID before its last /providers/ segment."""
    return path[: path.lower().rindex("/providers/")] or "/"


def _properties(body: Any) -> dict:
    if not isinstance(body, dict):
        raise _bad_request("The request content is not a JSON object.")
    properties = body.get("properties")
    if properties is None:
        return {}
    if not isinstance(properties, dict):
        raise _bad_request("'properties' must be a JSON object.")
    return properties


def put_policy_assignment(path: str, body: Any, existing: dict | None) -> tuple[int, dict]:
    """PolicyAssignments_Create answers 201 whether it created or updated (the spec's only
    success response). `scope` and `instanceId` are read-only: the instance ID "only and
    always changes when the assignment is deleted and recreated" (the spec's description), so
    an assignment put back after a deletion is a new instance, and a system-assigned
    identity it names is a new principal, with none of the old one's role assignments."""
    properties = {k: v for k, v in copy.deepcopy(_properties(body)).items() if k not in _ASSIGNMENT_READ_ONLY}
    mode = properties.setdefault("enforcementMode", "Default")
    if mode not in _ENFORCEMENT_MODES:
        raise _bad_request(f"The enforcement mode '{mode}' is not one of {', '.join(_ENFORCEMENT_MODES)}.")
    if not isinstance(properties.get("policyDefinitionId"), str) or not properties["policyDefinitionId"]:
        # The definition it names is not checked here (the emulator holds no policy definitions).
        raise _bad_request("The policy assignment must name a policyDefinitionId.")  # unverified message
    identity = copy.deepcopy(body.get("identity")) if isinstance(body.get("identity"), dict) else None
    if identity and identity.get("type") not in (None, "None") and not body.get("location"):
        # "location: ... Only required when utilizing managed identity." (the spec); code unverified.
        raise _bad_request("A policy assignment with a managed identity must have a location.")
    kept = (existing or {}).get("identity") or {}
    if identity and identity.get("type") == "SystemAssigned":
        identity["principalId"] = kept.get("principalId") or str(uuid.uuid4())
        identity["tenantId"] = TENANT_ID
    scope = scope_of(path)
    assignment = {
        "id": path, "name": path.rsplit("/", 1)[1], "type": TYPES[POLICY_ASSIGNMENT],
        "properties": {**properties, "scope": scope,
                       "instanceId": ((existing or {}).get("properties") or {}).get("instanceId") or str(uuid.uuid4())},
    }
    if body.get("location"):
        assignment["location"] = body["location"]
    if identity:
        assignment["identity"] = identity
    return 201, assignment


def put_policy_exemption(path: str, body: Any, existing: dict | None,
                         assignment_of: Callable[[str], dict | None]) -> tuple[int, dict]:
    """PolicyExemptions_CreateOrUpdate: 201 created, 200 updated; `policyAssignmentId` and
    `exemptionCategory` are required (read from the spec subset). With the default
    assignmentScopeValidation the exemption must be at or under its assignment's scope (the
    spec's enum description); the code and message of that refusal are unverified."""
    properties = copy.deepcopy(_properties(body))
    missing = [name for name in _EXEMPTION_PROPERTIES["required"] if not properties.get(name)]
    if missing:
        raise _bad_request(f"The policy exemption is missing required properties: {', '.join(missing)}.")
    if properties["exemptionCategory"] not in _EXEMPTION_CATEGORIES:
        raise _bad_request(f"The exemption category '{properties['exemptionCategory']}' is not one of "
                           f"{', '.join(_EXEMPTION_CATEGORIES)}.")
    assignment = assignment_of(str(properties["policyAssignmentId"]))
    if assignment is None:
        raise Refused(404, "PolicyAssignmentNotFound",  # unverified
                      f"The policy assignment '{properties['policyAssignmentId']}' is not found.")
    scope = scope_of(path).lower().rstrip("/")
    assigned_at = str((assignment.get("properties") or {}).get("scope") or scope_of(assignment["id"])).lower().rstrip("/")
    if properties.get("assignmentScopeValidation", "Default") == "Default" and not (
            scope == assigned_at or scope.startswith(assigned_at + "/")):
        raise Refused(400, "InvalidPolicyExemptionScope",  # unverified code
                      "The policy exemption scope must be at or under the policy assignment scope.")
    return (200 if existing else 201), {"id": path, "name": path.rsplit("/", 1)[1], "type": TYPES[POLICY_EXEMPTION],
                                        "properties": properties}


def put_diagnostic_setting(path: str, body: Any, siblings: list[dict]) -> dict:
    """DiagnosticSettings_CreateOrUpdate (200). Refused as the Insights RP does: a category the
    resource does not have, 400 BadRequest "Category 'X' is not supported." (hashicorp/terraform#20534);
    a destination another setting of the resource already uses for the same category, 409
    Conflict (Azure/terraform-azurerm-avm-ptn-aiml-landing-zone#19 quotes the answer); a sixth
    setting (the docs' limit of five; code and message unverified)."""
    properties = copy.deepcopy(_properties(body))
    name = path.rsplit("/", 1)[1]
    if not any(properties.get(sink) for sink in _DESTINATIONS):
        raise Refused(400, "BadRequest", "At least one destination (workspaceId, storageAccountId, "  # unverified
                                         "eventHubAuthorizationRuleId, marketplacePartnerId) must be specified.")
    blob_service = scope_of(path).lower().endswith("/blobservices/default")
    for entry in properties.get("logs") or []:
        group = str(entry.get("categoryGroup") or "").lower()
        category = str(entry.get("category") or "").lower()
        if blob_service and (category and category not in BLOB_LOG_CATEGORIES or group and group not in BLOB_CATEGORY_GROUPS):
            raise Refused(400, "BadRequest", f"Category '{entry.get('category') or entry.get('categoryGroup')}' "
                                             "is not supported.")
    for entry in properties.get("metrics") or []:
        if blob_service and str(entry.get("category") or "").lower() not in BLOB_METRIC_CATEGORIES:
            raise Refused(400, "BadRequest", f"Category '{entry.get('category')}' is not supported.")
    others = [s for s in siblings if s["name"].lower() != name.lower()]
    if len(others) >= MAX_DIAGNOSTIC_SETTINGS:
        raise Refused(400, "BadRequest", f"A resource can have at most {MAX_DIAGNOSTIC_SETTINGS} diagnostic "
                                         "settings.")  # unverified code and message
    for other in others:
        theirs = other.get("properties") or {}
        for sink in _DESTINATIONS:
            if not properties.get(sink) or str(properties[sink]).lower() != str(theirs.get(sink) or "").lower():
                continue
            shared = _enabled_categories(properties) & _enabled_categories(theirs)
            if shared:
                raise Refused(409, "Conflict", f"Data sink '{properties[sink]}' is already used in diagnostic setting "
                                               f"'{other['name']}' for category '{sorted(shared)[0]}'. Data sinks can't "
                                               "be reused in different settings on the same category for the same "
                                               "resource.")
    return {"id": path, "name": name, "type": TYPES[DIAGNOSTIC_SETTING], "properties": properties}


def _enabled_categories(properties: dict) -> set[str]:
    return {str(entry.get("category") or entry.get("categoryGroup")) for key in ("logs", "metrics")
            for entry in properties.get(key) or [] if entry.get("enabled")}


def listed(kind: str, items: dict[str, dict], scope: str, query: dict[str, str], now: datetime) -> list[dict]:
    """A list at a scope. Diagnostic settings: those of that resource. Policy assignments and
    exemptions (PolicyAssignments_List, PolicyExemptions_List and their ForResourceGroup forms):
    unfiltered, those at the scope, above it and below it; atScope(): at and above;
    atExactScope(): at; excludeExpired(): those without an expiresOn in the past."""
    scope = scope.lower().rstrip("/")
    wanted = query.get("$filter", "").lower()
    found = []
    for key, body in sorted(items.items()):
        own = key[: key.rindex("/providers/")].rstrip("/")
        at, above = own == scope, scope.startswith(own + "/")
        below = own.startswith(scope + "/")
        if kind == DIAGNOSTIC_SETTING:
            keep = at
        elif "atexactscope()" in wanted:
            keep = at
        elif "atscope()" in wanted:
            keep = at or above
        else:
            keep = at or above or below
        if keep and "excludeexpired()" in wanted and _expired(body, now):
            keep = False
        if keep:
            found.append(copy.deepcopy(body))
    return found


def _expired(exemption: dict, now: datetime) -> bool:
    expires = (exemption.get("properties") or {}).get("expiresOn")
    if not isinstance(expires, str):
        return False
    try:
        return datetime.fromisoformat(re.sub(r"Z$", "+00:00", expires)) <= now
    except ValueError:
        return False
