"""When an object replication policy copies synthetic data out of scope: the protected
account is the policy's source, and its destination is not a protected account the app
can read in the watched subscriptions.

Object replication copies every new and changed blob of the source containers to the
destination, asynchronously and for as long as the policy exists on the source
(https://learn.microsoft.com/azure/storage/blobs/object-replication-overview). The assessor
(containment.detect.storage) reads the destination account and puts what it found in the
facts; this judges them, failing closed: a destination the app cannot read (another tenant,
a subscription it does not watch, a bare account name) is out of scope. The app's identity
holds tokens for its own tenant only, so an account it can read is in its tenant.
"""
from __future__ import annotations

from containment.core.ids import REPLICATION_POLICY
from containment.judge.rule import Context, Rule


def _properties(body: dict) -> dict:
    properties = body.get("properties")
    return properties if isinstance(properties, dict) else {}


def replication_to_unprotected_destination(policy: dict, context: Context):
    facts = context.facts
    if facts.get("side") != "source":
        return None  # the judged account receives the data (or the policy names neither side): not this finding
    properties = _properties(policy)
    destination = facts.get("destination") or {}
    if destination.get("protected"):
        return None
    why = destination.get("why") or "not a protected account"
    evidence = {
        "policyId": properties.get("policyId") or policy.get("name"),
        "sourceAccount": properties.get("sourceAccount"),
        "destinationAccount": properties.get("destinationAccount"),
        "rules": [{"sourceContainer": rule.get("sourceContainer"), "destinationContainer": rule.get("destinationContainer")}
                  for rule in properties.get("rules") or [] if isinstance(rule, dict)],
        "destination": why,
    }
    summary = (f"object replication copies this account's blobs to {properties.get('destinationAccount')!r}, "
               f"which is out of scope: {why}")
    if facts.get("cross_tenant_allowed"):
        # The account lets policies reach other tenants (storage_cross_tenant_replication_allowed):
        # ARM refuses to turn that off while a cross-tenant policy exists, so this policy goes first
        # (https://learn.microsoft.com/azure/storage/blobs/object-replication-prevent-cross-tenant-policies).
        evidence["allowCrossTenantReplication"] = True
        summary += ("; the account allows cross-tenant replication (storage_cross_tenant_replication_allowed), which "
                    "ARM lets be turned off only once no cross-tenant policy is left")
    return summary, evidence


RULES = (
    Rule("storage_replication_to_unprotected_destination", "critical", REPLICATION_POLICY,
         replication_to_unprotected_destination),
)
