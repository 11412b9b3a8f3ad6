"""What happens when a network security group or one of its rules is written.

Any write can change what every rule of the NSG lets through (a Deny moved below an Allow
un-shadows it), so the whole NSG is re-read and every rule judged, default rules included.
"""
from __future__ import annotations

from typing import Any

from containment.adapters import arm
from containment.adapters.runtime import Runtime, current
from containment.core.events import WRITE_SUCCESS, ArmEvent, EventSubscription
from containment.core.ids import DEFAULT_SECURITY_RULE, NSG, SECURITY_RULE, ResourceId
from containment.detect.pipeline import Assessment, EventPath, handle_arm_event, in_scope
from containment.judge.nsg_reach import all_rules
from containment.judge.rule import Context
from containment.plan.registry import judge

PERMISSIONS = ("Microsoft.Network/networkSecurityGroups/read",)  # what assessing reads
OPERATIONS = ("Microsoft.Network/networkSecurityGroups/write",
              "Microsoft.Network/networkSecurityGroups/securityRules/write")
SUBSCRIPTION = EventSubscription((WRITE_SUCCESS,), OPERATIONS)


def on_nsg_write(event: Any, runtime: Runtime | None = None):
    return handle_arm_event(event, PATH, runtime or current())


def assess_nsg(resource: ResourceId, runtime: Runtime, event: ArmEvent | None) -> Assessment:
    if not (resource.is_type(NSG) or resource.is_type(SECURITY_RULE) or resource.is_type(DEFAULT_SECURITY_RULE)):
        return Assessment(resource.text, ignored=f"{resource.type} is not a network security group or rule")
    nsg_id = resource if resource.is_type(NSG) else resource.ancestor(1)
    try:
        nsg = arm.read(runtime.clients, nsg_id)
    except arm.ResourceGone:
        return Assessment(resource.text, ignored="the network security group no longer exists")
    written = arm.find_rule(nsg, resource.name) if not resource.is_type(NSG) else nsg
    spelled = (written or {}).get("id") or resource.text
    protection = in_scope(spelled, nsg_id, nsg.get("tags"), runtime, "the network security group")
    if isinstance(protection, Assessment):
        return protection
    context = Context(runtime.settings, protection, facts={"nsg": nsg})
    findings = [finding for rule in all_rules(nsg) for finding in judge(SECURITY_RULE, rule, context)]
    return Assessment(spelled, findings, {nsg["id"]: nsg})


PATH = EventPath(SUBSCRIPTION, assess_nsg)
