"""When blob reads from a protected account are egress to act on. Pure.

Each rule judges one account's activity in one scan window (rows of the egress_window
query, one per caller) against the settings and, for volume, each caller's baseline (rows
of the egress_baseline query). A finding carries the callers that fired, with their
aggregates and sample URIs, as its evidence. Egress findings are contained by severity
(CONTAINMENT_EGRESS_CONTAINMENT).
"""
from __future__ import annotations

import ipaddress
from typing import Any

from containment.judge.rule import Context, Rule

TABLE = "StorageBlobLogs"
MB = 1024 * 1024


def _evidence(caller: dict, **extra: Any) -> dict[str, Any]:
    keep = ("Caller", "Bytes", "Blobs", "Requests", "AuthenticationTypes", "Addresses", "SampleUris",
            "FirstRead", "LastRead")
    evidence = {}
    for name in keep:
        value = caller.get(name)
        if isinstance(value, list):
            value = value[:10]  # samples, not the whole log: the rows stay in Log Analytics
        elif name in ("FirstRead", "LastRead") and value is not None:
            value = str(value)
        evidence[name] = value
    return {**evidence, **extra}


def _trusted(address: str, allowed) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False  # an address the logs could not give is not trusted
    return any(ip in network for network in allowed)


def anonymous_read(activity: dict, context: Context):
    callers = [c for c in activity["callers"] if (c.get("AnonymousRequests") or 0) > 0]
    if not callers:
        return None
    total = sum(c["AnonymousRequests"] for c in callers)
    return (f"{total} anonymous blob reads by {len(callers)} caller(s) in the window",
            {"callers": [_evidence(c, AnonymousRequests=c["AnonymousRequests"]) for c in callers]})


def key_or_sas_from_untrusted_network(activity: dict, context: Context):
    allowed = context.settings.allowed_cidrs
    callers = []
    for caller in activity["callers"]:
        if not caller.get("KeyOrSasRequests"):
            continue
        outside = [a for a in caller.get("Addresses") or [] if not _trusted(a, allowed)]
        if outside:
            callers.append(_evidence(caller, KeyOrSasRequests=caller["KeyOrSasRequests"], untrusted_addresses=outside))
    if not callers:
        return None
    return (f"SAS or account-key reads from {len(callers)} address(es) outside CONTAINMENT_ALLOWED_CIDRS: "
            "a key or SAS is in the wrong hands", {"callers": callers})


def volume_anomaly(activity: dict, context: Context):
    settings, baseline = context.settings, context.facts.get("baseline", {})
    callers = []
    for caller in activity["callers"]:
        history = baseline.get((activity["id"].lower(), caller["Caller"]))
        if history and history.get("ActiveWindows"):
            threshold = max(settings.egress_volume_floor_mb * MB,
                            history["Mean"] + settings.egress_volume_sigmas * history["StdDev"])
            basis = {"baseline_mean_bytes": round(history["Mean"]), "baseline_stddev_bytes": round(history["StdDev"]),
                     "baseline_active_windows": history["ActiveWindows"]}
        else:
            threshold = settings.egress_new_caller_mb * MB
            basis = {"baseline": "none: a new caller"}
        if (caller.get("Bytes") or 0) > threshold:
            callers.append(_evidence(caller, threshold_bytes=round(threshold), **basis))
    if not callers:
        return None
    gigabytes = sum(c["Bytes"] for c in callers) / 1024 ** 3
    return (f"{len(callers)} caller(s) read {gigabytes:.2f} GiB, above their thresholds, in one window",
            {"callers": callers})


def bulk_enumeration(activity: dict, context: Context):
    limit = context.settings.egress_enumeration_blobs
    callers = [_evidence(c, threshold_blobs=limit) for c in activity["callers"] if (c.get("Blobs") or 0) > limit]
    if not callers:
        return None
    return (f"{len(callers)} caller(s) read more than {limit} distinct blobs in one window", {"callers": callers})


RULES = (
    Rule("egress_anonymous_read", "critical", TABLE, anonymous_read, contained_by_severity=True),
    Rule("egress_key_or_sas_from_untrusted_network", "critical", TABLE, key_or_sas_from_untrusted_network,
         contained_by_severity=True),
    Rule("egress_volume_anomaly", "high", TABLE, volume_anomaly, contained_by_severity=True),
    Rule("egress_bulk_enumeration", "medium", TABLE, bulk_enumeration, contained_by_severity=True),
)
