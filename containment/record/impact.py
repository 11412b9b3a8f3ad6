"""The impact preview: before an action that breaks legitimate work waits for a person, who
would it break? From the account's StorageBlobLogs of the last CONTAINMENT_IMPACT_PREVIEW_DAYS
(queries/impact_preview.kql), per held action, the callers that used what it takes away, with
the credential, how often, first and last:

- `rotate_account_keys`: requests signed with a key it rotates (the key itself, or a SAS it
  signed): the keys the held step carries (what an earlier decision of the incident left),
  else those the decision's findings on the account name (evidence `keys`), both where any
  names none: the keys the worker rotates (containment.plan.keys.keys_of);
- `revoke_user_delegation_keys`: requests with a user-delegation SAS;
- `lock_account_network`: requests from addresses the lock refuses. Under
  `deny-by-default` the account's IP rules stay, so a public IPv4 address outside them is
  refused (one inside CONTAINMENT_ALLOWED_CIDRS too: the lock does not add those); under
  `disable-public-network-access` every public address is. A private or IPv6 address is
  `undetermined`: a virtual-network rule or a private endpoint may admit it, and no address
  says which, nor whether a trusted Azure service (bypass) sent it;
- `remove_replication_policy`: the policy's destination and rules, from the body the
  decision recorded (no log shows the replication itself);
- any other action: no preview, said so.

It is computed once, when the actions are held (a decision recorded with steps awaiting
approval, or held whole by the blast-radius limit), and kept on the record: one query per
account the held actions change. It is bounded (the ten busiest callers per action and
verdict, with totals over all) and carries the SHA-256 of what it says. A preview that
cannot be made (no workspace, a query that fails) never holds up or loses the decision:
the record says the preview is unavailable, and why. So does a preview of an account that
logged no blob request in these days (a missing diagnostic setting, logs not yet ingested):
no logs is not "no caller", and must not read as safe to act. The preview reads blob requests
only; the keys also sign queue, table and file requests, which are not in StorageBlobLogs.
"""
from __future__ import annotations

import ipaddress
import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

from containment.adapters import log_analytics
from containment.adapters.runtime import Runtime
from containment.core import clock
from containment.core.findings import evidence_digest
from containment.core.records import DecisionRecord, describe_failure
from containment.plan.keys import keys_of

log = logging.getLogger("containment")
# The same reads as the egress scan: the workspace's StorageBlobLogs.
PERMISSIONS = ("Microsoft.OperationalInsights/workspaces/read", "Microsoft.OperationalInsights/workspaces/query/read",
               "Microsoft.OperationalInsights/workspaces/query/StorageBlobLogs/read")
QUERY = "impact_preview"
FROM_LOGS = ("rotate_account_keys", "revoke_user_delegation_keys", "lock_account_network")
REPLICATION = "remove_replication_policy"
# Addresses no IP rule can hold: IP rules take public IPv4 addresses only, not the private
# ranges of RFC 1918, and have no effect on requests from the account's own Azure region, which
# come from private addresses (https://learn.microsoft.com/azure/storage/common/storage-network-security-limitations).
# A request from one came through a virtual network: a service endpoint, which a virtual-network
# rule may admit, or a private endpoint, which the firewall does not judge.
PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
_NUMBER = (int, float)
COLUMNS = {"Action": str, "Verdict": str, "Row": str, "Requests": _NUMBER}
RULES_KEPT = 10  # replication rules a preview lists; the count says how many there are
USES = {
    "rotate_account_keys": "blob requests signed with {keys}: the account key itself, or a SAS it signed",
    "revoke_user_delegation_keys": "blob requests with a user-delegation SAS (every one is invalidated)",
    "lock_account_network": "blob requests from addresses the lock refuses",
}
NOTES = {
    "rotate_account_keys": (
        "Only blob requests are read (StorageBlobLogs): the keys also sign queue, table and file requests, "
        "which are not in these logs"),
    "lock_account_network": (
        "An address is judged against the account's IP rules as recorded; private and IPv6 addresses are "
        "undetermined (a virtual-network rule or a private endpoint may admit them: no address says which), "
        "and so is whether a trusted Azure service (networkAcls bypass) sent a request"),
    REPLICATION: (
        "No log shows the replication itself: the service copies the blobs asynchronously, and Microsoft documents "
        "its status per blob (Get Blob Properties, x-ms-or-* headers), not per request "
        "(https://learn.microsoft.com/azure/storage/blobs/object-replication-overview); the destination stops "
        "receiving new and changed blobs of these containers"),
}


def previewed(runtime: Runtime, record: DecisionRecord) -> DecisionRecord:
    """The record with the preview of its held actions (the record itself if none is held)."""
    if not record.awaiting_approval:
        return record
    return replace(record, impact_preview=preview(runtime, record))


def preview(runtime: Runtime, record: DecisionRecord) -> dict[str, Any]:
    settings = runtime.settings
    until = clock.now()
    since = until - timedelta(days=settings.impact_preview_days)
    held = [(step["action"], step["target"]) for step in record.awaiting_approval]
    answers, queries = {}, 0
    for account in dict.fromkeys(t for a, t in held if a in FROM_LOGS):
        answers[account], queried = _uses(runtime, record, account, {a for a, t in held if t == account}, since, until)
        queries += queried
    steps = [_from_logs(action, target, answers[target][action], record, runtime) if action in FROM_LOGS
             else _replication(target, record) if action == REPLICATION
             else {"action": action, "target": target, "status": "none",
                   "note": f"no preview: nothing in the logs shows who {action} would affect"}
             for action, target in held]
    return {"since": clock.iso(since), "until": clock.iso(until), "days": settings.impact_preview_days,
            "queries": queries, "steps": steps,
            "digest": evidence_digest({"steps": steps})}


def _uses(runtime: Runtime, record: DecisionRecord, account: str, actions: set[str], since,
          until) -> tuple[dict[str, list[dict] | str], bool]:
    """Per action held on one account, the query's rows or why there are none, and whether the
    logs were queried (once for all of them)."""
    settings = runtime.settings
    answers: dict[str, list[dict] | str] = {}
    ranges: tuple = ()
    if "lock_account_network" in actions:
        try:
            ranges = address_ranges(record, account, runtime)
        except ValueError as missing:
            answers["lock_account_network"] = str(missing)
    asked = {action for action in actions & set(FROM_LOGS) if action not in answers}
    if not asked:
        return answers, False
    if settings.log_workspace_id is None:
        return {**answers, **{action: "CONTAINMENT_LOG_WORKSPACE_ID is not set: no logs to read" for action in asked}}, False
    try:
        rows: list[dict] | str = log_analytics.checked(log_analytics.run(
            runtime.clients, settings.log_workspace_id, QUERY, since, until, lookback_start=since, lookback_end=until,
            accounts=(account.lower(),),
            rotated_keys=_rotated(record, account) if "rotate_account_keys" in asked else (),
            delegation_sas="revoke_user_delegation_keys" in asked, lock_network="lock_account_network" in asked,
            address_ranges=ranges), QUERY, COLUMNS)
    except Exception as error:  # noqa: BLE001 - a preview must never hold up or lose the decision
        log.error("IMPACT PREVIEW UNAVAILABLE for %s (%s): %s", account, record.key, error)
        rows = describe_failure(error)
    else:
        if not _logged(rows).get("Requests"):
            rows = (f"no StorageBlobLogs from this account in {settings.impact_preview_days} days: a missing diagnostic "
                    "setting or logs not yet ingested look the same as no caller, so the logs cannot say whom the "
                    "action breaks")
    return {**answers, **{action: rows for action in asked}}, True


def _logged(rows: list[dict]) -> dict:
    """The query's `logs` row: how many blob requests the account logged in these days, the last when."""
    return next((row for row in rows if row["Row"] == "logs"), {})


def _rotated(record: DecisionRecord, account: str) -> tuple[str, ...]:
    """The keys the rotation held on the account rotates (keys_of), as the worker reads them."""
    return keys_of(next(step for step in record.awaiting_approval
                        if step["action"] == "rotate_account_keys" and step["target"] == account), record.findings)


def address_ranges(record: DecisionRecord, account: str, runtime: Runtime) -> tuple:
    """The ranges the query judges addresses by, as [first, last, verdict] (parse_ipv4 numbers):
    the account's IPv4 rules as recorded (kept, under deny-by-default) and the private ranges
    (undetermined). ValueError where the lock keeps rules the record does not hold."""
    kept: list[str] = []
    if runtime.settings.network_lock == "deny-by-default":
        body = _recorded(record, account)
        if body is None:
            raise ValueError(f"the account's network rules are not on the record of {record.key}: who the lock "
                             "refuses cannot be told")
        acls = (body.get("properties") or {}).get("networkAcls") or {}
        kept = [rule.get("value") for rule in acls.get("ipRules") or []
                if isinstance(rule, dict) and (rule.get("action") or "Allow") == "Allow"]
    ranges = []
    for cidrs, verdict in ((kept, "kept"), (PRIVATE, "undetermined")):
        for cidr in cidrs:
            try:
                network = ipaddress.ip_network(str(cidr), strict=False)
            except ValueError:
                continue  # an IP rule ARM would not have accepted: it admits nobody
            if network.version == 4:
                ranges.append((int(network.network_address), int(network.broadcast_address), verdict))
    return tuple(ranges)


def _from_logs(action: str, target: str, answer: list[dict] | str, record: DecisionRecord,
               runtime: Runtime) -> dict[str, Any]:
    step: dict[str, Any] = {"action": action, "target": target}
    if action == "rotate_account_keys":  # which keys rotate is known, logs or not
        step["keys"] = list(_rotated(record, target))
    if isinstance(answer, str):
        return {**step, "status": "unavailable", "reason": answer}
    logged = _logged(answer)
    step.update(status="previewed", uses=USES[action].format(keys=" or ".join(step.get("keys", ()))),
                blob_requests_logged=int(logged["Requests"]), last_logged=_time(logged.get("LastLogged")))
    if action in NOTES:
        step["note"] = NOTES[action]
    verdicts = ("refused", "undetermined") if action == "lock_account_network" else ("breaks",)
    # The callers the findings name: the leak itself, which the action is meant to stop.
    found = {str(c.get("Caller")) for f in record.findings for c in (f.get("evidence") or {}).get("callers") or []
             if isinstance(c, dict) and c.get("Caller")}
    for verdict in verdicts:
        mine = [row for row in answer if row["Action"] == action and row["Verdict"] == verdict]
        total = next((row for row in mine if row["Row"] == "total"), {})
        group = {"caller_count": int(total.get("Callers") or 0), "requests": int(total.get("Requests") or 0),
                 "first_use": _time(total.get("FirstUse")), "last_use": _time(total.get("LastUse")),
                 "callers": [_caller(row, runtime, found) for row in mine if row["Row"] == "caller"]}
        if verdict == "undetermined":
            step["undetermined"] = group
        else:
            step.update(group)
    return step


def _caller(row: dict, runtime: Runtime, found: set[str]) -> dict[str, Any]:
    address = row.get("Address") or ""
    caller = {"caller": row.get("Caller") or address, "address": address,
              "authentication": row.get("AuthenticationType") or "", "credential": credential(row),
              "requests": int(row["Requests"]), "first_use": _time(row.get("FirstUse")),
              "last_use": _time(row.get("LastUse")), "user_agents": list(row.get("UserAgents") or [])[:3]}
    if row.get("SasSignature"):
        caller["sas_signature"] = row["SasSignature"]
    if caller["caller"] in found:
        caller["named_by_finding"] = True
    elif _allowed(address, runtime):
        caller["allowed_network"] = True  # inside CONTAINMENT_ALLOWED_CIDRS: legitimate work, most likely
    return caller


def credential(row: dict) -> str:
    """What the caller presented, in words (a SAS by its signature's hash, never the SAS)."""
    kind, key, signature = row.get("AuthenticationType") or "", row.get("SigningKey") or "", row.get("SasSignature") or ""
    sas = f" (SasSignature {signature[:12]}...)" if signature else ""
    if kind == "AccountKey":
        return f"account key {key}" if key else "account key"
    if kind == "SAS":
        return f"SAS signed with {key}{sas}" if key else f"SAS{sas}"
    if kind == "DelegationSas":
        return f"user-delegation SAS{sas}"
    return kind or "unknown"


def _replication(target: str, record: DecisionRecord) -> dict[str, Any]:
    step: dict[str, Any] = {"action": REPLICATION, "target": target}
    body = _recorded(record, target)
    if body is None:
        return {**step, "status": "unavailable", "reason": "the policy's body is not on the record"}
    properties = body.get("properties") or {}
    rules = [rule for rule in properties.get("rules") or [] if isinstance(rule, dict)]
    return {**step, "status": "previewed", "basis": "the policy as recorded", "note": NOTES[REPLICATION],
            "source_account": properties.get("sourceAccount"),
            "destination_account": properties.get("destinationAccount"), "rule_count": len(rules),
            "rules": [{"source_container": rule.get("sourceContainer"),
                       "destination_container": rule.get("destinationContainer"),
                       "prefix_match": list((rule.get("filters") or {}).get("prefixMatch") or [])[:10]}
                      for rule in rules[:RULES_KEPT]]}


def _recorded(record: DecisionRecord, resource_id: str) -> dict | None:
    body = next((body for rid, body in record.before.items() if rid.lower() == resource_id.lower()), None)
    return body if isinstance(body, dict) else None


def _allowed(address: str, runtime: Runtime) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in runtime.settings.allowed_cidrs if network.version == ip.version)


def _time(value: Any) -> str | None:
    return None if value is None else clock.iso(value) if hasattr(value, "astimezone") else str(value)


# -- how a person reads it ------------------------------------------------------------------------
SHOWN = 5  # callers per action in a notification or a one-line summary; the record keeps ten


def in_words(step: dict[str, Any]) -> str:
    """One held action's preview in a sentence: who it would break, how often, when last."""
    action = step.get("action")
    if step.get("status") == "unavailable":
        return f"{action}: impact preview unavailable: {step.get('reason')}"
    if step.get("status") != "previewed":
        return f"{action}: {step.get('note') or 'no preview'}"
    if action == REPLICATION:
        rules = ", ".join(f"{r.get('source_container')} -> {r.get('destination_container')}"
                          for r in step.get("rules") or [])
        return (f"{action}: replication from {step.get('source_account')} to {step.get('destination_account')} "
                f"stops ({step.get('rule_count')} rule(s): {rules or 'none'})")
    count = step.get("caller_count") or 0
    verb = "refuses" if action == "lock_account_network" else "breaks"
    if not count:
        logged = step.get("blob_requests_logged")
        among = (f"among the {logged:,} blob requests the account logged, the last at {step.get('last_logged')}"
                 if logged else "seen in the blob logs")
        text = f"{action} {verb} no caller {among} ({step.get('uses')})"
    else:
        named = "; ".join(f"{c.get('caller')} ({c.get('credential')}, {c.get('requests'):,} blob requests, last "
                          f"{c.get('last_use')}{_marked(c)})"
                          for c in (step.get("callers") or [])[:SHOWN])
        more = count - min(count, SHOWN)
        text = (f"{action} {verb} {count} caller(s), {step.get('requests'):,} blob requests, last {step.get('last_use')}: "
                f"{named}{f' and {more} more' if more > 0 else ''}")
    undetermined = step.get("undetermined") or {}
    if undetermined.get("caller_count"):
        text += (f"; undetermined: {undetermined['caller_count']} caller(s) from private or IPv6 addresses, "
                 f"{undetermined['requests']:,} blob requests")
    return text


def _marked(caller: dict[str, Any]) -> str:
    if caller.get("named_by_finding"):
        return ", the caller the finding names"
    return ", inside CONTAINMENT_ALLOWED_CIDRS" if caller.get("allowed_network") else ""


def compact(preview: dict[str, Any]) -> dict[str, Any]:
    """The preview as a notice carries it: each action in words, its counts, the busiest callers."""
    if not preview:
        return {}
    keep = ("action", "target", "status", "reason", "caller_count", "requests", "last_use")
    return {"since": preview.get("since"), "until": preview.get("until"), "digest": preview.get("digest"),
            "steps": [{**{name: step[name] for name in keep if name in step}, "summary": in_words(step),
                       "callers": [{name: c.get(name) for name in ("caller", "credential", "requests", "last_use")}
                                   for c in (step.get("callers") or [])[:SHOWN]]}
                      for step in preview.get("steps") or []]}
