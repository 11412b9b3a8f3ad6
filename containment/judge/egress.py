"""When blob reads from a protected account are egress to act on. Pure.

Each rule judges one account's activity in one scan window (rows of the egress_window
query, one per caller) against the settings and, for volume, each caller's baseline (rows
of the egress_baseline query); the canary rule judges the account's canary reads (rows of the
egress_canary query), and the copy rule the account's server-side copies (rows of the egress_copy
query, each marked by the scan with whether its destination is a protected account) instead.
Findings about a key or SAS name the credential: `keys`, the account keys that signed it, and
`sas_signatures`, the SHA-256 hashes of the SAS signatures, never the SAS (credentials()).
A finding's evidence is bounded, however many callers fired (400 anonymous IPv6 addresses in
one window): the counts, the top callers by bytes and
requests with their sample URIs cut to a readable length, the blobs those samples name, and
the SHA-256 of the full evidence (every caller that fired, URIs whole), which the finding
carries beside it for the ledger to keep. Egress findings are contained by severity
(CONTAINMENT_EGRESS_CONTAINMENT).
"""
from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from containment.core import clock
from containment.core.findings import ACCOUNT_KEYS, evidence_digest
from containment.judge.allowlist import allowance
from containment.judge.rule import Context, Rule

TABLE = "StorageBlobLogs"
# What the two rules below judge, besides one account's window: whether one protected account's
# logs arrive (rows of the egress_arrival query), and one vault's key operations in one window
# (rows of the egress_vault_keys query over AZKVAuditLogs).
ARRIVAL = "StorageBlobLogs arrival"
VAULT_KEYS = "AZKVAuditLogs"
MB = 1024 * 1024
# What a finding keeps inline: a record of four egress findings stays within one Table
# property (32K characters), and the full evidence is a digest away.
TOP_CALLERS = 10
TOP_OBJECTS = 10
SAMPLE_URIS = 3
LIST_ITEMS = 10  # addresses per caller (the query keeps ten)
URI_CHARACTERS = 200  # an account, a container and a long blob path; a SAS query string is cut
SAS_SIGNATURES = 10  # SAS signature hashes a finding names (the queries keep ten per caller)


def _evidence(caller: dict, **extra: Any) -> dict[str, Any]:
    """One caller as the evidence names it: its aggregates and samples, as the query gave them."""
    keep = ("Caller", "Bytes", "Blobs", "Requests", "AuthenticationTypes", "Addresses", "SampleUris",
            "FirstRead", "LastRead")
    evidence = {}
    for name in keep:
        value = caller.get(name)
        if name in ("FirstRead", "LastRead") and value is not None:
            value = str(value)
        elif name == "SampleUris" and isinstance(value, list):
            value = [_redacted(uri) for uri in value]
        evidence[name] = value
    used = credentials([caller])
    if used["keys"] or used["sas_signatures"] or caller.get("UnknownKeyRequests"):
        evidence.update(Keys=used["keys"], SasSignatures=used["sas_signatures"])
    if caller.get("UnknownKeyRequests"):  # the finding's credentials() reads it from the evidence
        evidence["UnknownKeyRequests"] = caller["UnknownKeyRequests"]
    grants = [grant for uri in caller.get("SampleUris") or [] if (grant := sas_grant(uri))]
    if grants:
        evidence["SasGrants"] = grants
    return {**evidence, **extra}


def credentials(rows: list[dict]) -> dict[str, list[str]]:
    """The credentials these rows' requests used, as a finding names them: `keys`, the account
    keys (key1, key2) that signed an account-key request or its SAS, and `sas_signatures`, the
    SHA-256 hashes of the SAS signatures (at most SAS_SIGNATURES). The rows are the queries'
    (Keys, SasSignatures), parsed from AuthenticationHash by the credential block the queries
    share (egress_window.kql, egress_copy.kql); empty strings (a request
    that used neither) and anything that is not a key name or a hexadecimal hash are dropped.
    Where any SAS or account-key request's hash named no key (UnknownKeyRequests), `keys` is
    empty: not known, so the rotation takes both (a key named beside an unknown one would
    leave the unknown one valid)."""
    unknown = any(row.get("UnknownKeyRequests") for row in rows)
    keys = set() if unknown else {key for row in rows for key in row.get("Keys") or [] if key in ACCOUNT_KEYS}
    hashes = {str(h).upper() for row in rows for h in row.get("SasSignatures") or []
              if isinstance(h, str) and h and all(c in "0123456789abcdefABCDEF" for c in h)}
    return {"keys": sorted(keys), "sas_signatures": sorted(hashes)[:SAS_SIGNATURES]}


def sas_parameters(uri: Any) -> dict[str, str] | None:
    """A SAS URI's query parameters, decoded (first of each name), or None where the URI
    carries no SAS (neither `sv` nor `sig`). The one reader of a logged SAS URI: the grant a
    finding shows (sas_grant) and the incident report's words (containment.record.leak)."""
    if not isinstance(uri, str) or "?" not in uri:
        return None
    query: dict[str, str] = {}
    for part in uri.split("?", 1)[1].split("#", 1)[0].split("&"):
        name, _, value = part.partition("=")
        if name:  # as a form decodes it: '+' is a space, %XX a byte (SAS values are ASCII)
            query.setdefault(name, _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value.replace("+", " ")))
    return query if "sv" in query or "sig" in query else None


def sas_grant(uri: Any) -> dict[str, Any] | None:
    """What a SAS in a logged URI granted, where the URI keeps its parameters: permissions
    (sp), start (st), expiry (se), resource (sr), version (sv), and the lifetime in hours from
    start to expiry (None without both). Never the signature. Whether the service's logged Uri
    keeps these parameters is not documented (README, what is unverified); None where it has none."""
    query = sas_parameters(uri) or {}
    grant = {name: query[name] for name in ("sp", "st", "se", "sr", "sv") if query.get(name)}
    if "se" not in grant and "sp" not in grant:
        return None
    start, expiry = clock.instant(grant.get("st")), clock.instant(grant.get("se"))
    grant["lifetime_hours"] = round((expiry - start).total_seconds() / 3600, 2) if start and expiry else None
    return grant


_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


def _redacted(uri: Any) -> Any:
    """A sample URI without its SAS signature: evidence must not hand the ledger's readers
    the credential that leaked (`sig` is the SAS's HMAC; the other parameters say what it granted)."""
    if not isinstance(uri, str) or "?" not in uri:
        return uri
    path, query = uri.split("?", 1)
    return path + "?" + "&".join("sig=REDACTED" if part.lower().startswith("sig=") else part
                                 for part in query.split("&"))


def _cut(text: str) -> str:
    return text if len(text) <= URI_CHARACTERS else f"{text[:URI_CHARACTERS]}... [{len(text) - URI_CHARACTERS} more]"


def _sampled(caller: dict) -> dict[str, Any]:
    """A caller as a finding keeps it: a few sample URIs, ten of any other list, text cut."""
    def bounded(name: str, value: Any) -> Any:
        if isinstance(value, list):
            return [bounded("", item) for item in value[:SAMPLE_URIS if name == "SampleUris" else LIST_ITEMS]]
        return _cut(value) if isinstance(value, str) else value
    return {name: bounded(name, value) for name, value in caller.items()}


def _object(uri: str) -> str:
    """The blob a sample URI names: its path, without the query string (a SAS lives there)."""
    return uri.split("?", 1)[0].split(".net/", 1)[-1]


def _bounded(callers: list[dict]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the evidence a finding keeps, the full evidence it summarises): counts over every
    caller, the top callers by bytes then requests, the sampled blobs the most callers
    read, and the full evidence's digest."""
    # In the caller's order, not the answer's: the same window always has the same digest.
    full = {"callers": sorted(callers, key=lambda c: str(c.get("Caller")))}
    ranked = sorted(full["callers"], key=lambda c: (-(c.get("Bytes") or 0), -(c.get("Requests") or 0)))
    readers: dict[str, list[dict]] = {}
    for caller in ranked:
        for uri in caller.get("SampleUris") or []:
            readers.setdefault(_object(uri), []).append(caller)
    objects = sorted(readers.items(), key=lambda item: (len(item[1]), sum(c.get("Bytes") or 0 for c in item[1])),
                     reverse=True)
    evidence = {
        "caller_count": len(callers),
        "requests": sum(c.get("Requests") or 0 for c in callers),
        "bytes": sum(c.get("Bytes") or 0 for c in callers),
        "callers": [_sampled(c) for c in ranked[:TOP_CALLERS]],
        # Objects are known from the samples (the query keeps a few URIs per caller), so
        # they are ranked by how many callers' samples name them, then by those callers' bytes.
        "sampled_objects": [{"object": _cut(name), "callers": len(who)} for name, who in objects[:TOP_OBJECTS]],
        "digest": evidence_digest(full),
    }
    return evidence, full


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
            *_bounded([_evidence(c, AnonymousRequests=c["AnonymousRequests"]) for c in callers]))


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
    evidence, full = _bounded(callers)
    return (f"SAS or account-key reads from {len(callers)} address(es) outside CONTAINMENT_ALLOWED_CIDRS: "
            "a key or SAS is in the wrong hands", {**evidence, **credentials(callers)}, full)


def sas_expiry_policy_violated(activity: dict, context: Context):
    """Reads with a SAS whose validity exceeds the account's SAS expiration policy (or that
    has no signed start while one is in effect): the service says so in SasExpiryStatus
    (https://learn.microsoft.com/azure/storage/common/sas-expiration-policy). Medium: the SAS
    is a standing credential that outlives its policy, not by itself one in the wrong hands
    (a SAS used from outside the allowed networks is egress_key_or_sas_from_untrusted_network,
    critical, in the same decision); by default recorded for a person, who knows which key and
    which SAS hash it was."""
    callers = [_evidence(c, SasPolicyViolations=c["SasPolicyViolations"],
                         SasExpiryStatuses=[s for s in c.get("SasExpiryStatuses") or [] if s])
               for c in activity["callers"] if c.get("SasPolicyViolations")]
    if not callers:
        return None
    evidence, full = _bounded(callers)
    total = sum(c["SasPolicyViolations"] for c in callers)
    return (f"{total} read(s) by {len(callers)} caller(s) with a SAS that violates the account's SAS expiration "
            "policy", {**evidence, **credentials(callers)}, full)


def copy_out_of_scope(activity: dict, context: Context):
    """Server-side copies of the account's blobs to an account that is not protected (another
    subscription or tenant, or one without the scope tag): rows of the egress_copy query,
    from whichever side logged them, each marked by the scan (DestinationProtected) with
    whether its destination is a protected account it can read in ARM. A copy between two
    protected accounts is not a finding. A copy tool's read that names no destination is one
    where its caller is of another tenant than the app's (ForeignTenants, from
    RequesterTenantId), and otherwise not judged here. Fail closed: a DestinationUri that names
    no account the query can read (a custom domain, another service), and a row the scan could
    not resolve (Unresolved: ARM did not list the accounts or tenants), are out of scope, the
    evidence says why. The keys and SAS hashes named are the source's: those of the reads the
    source logged (a destination's row carries the destination's credential, not the source's)."""
    rows = sorted((r for r in activity.get("copies") or [] if (
                      r.get("DestinationAccount") and not r.get("DestinationProtected")
                      or not r.get("DestinationAccount") and (_destination_uris(r) or r.get("ForeignTenants"))
                      or r.get("Unresolved"))),
                  key=lambda r: (str(r.get("DestinationAccount")), str(r.get("Operation")), str(r.get("Caller"))))
    if not rows:
        return None
    copies = [{"Operation": r.get("Operation"), "LoggedBy": r.get("Side"), "Source": r.get("SourceAccount"),
               "Destination": _destination(r), "Caller": r.get("Caller"), "Requests": r.get("Requests"),
               "ForeignTenants": r.get("ForeignTenants"),
               "Objects": r.get("Objects"), "SourceUris": [_redacted(u) for u in r.get("SourceUris") or []],
               "DestinationUris": [_redacted(u) for u in r.get("DestinationUris") or []],
               "UserAgents": r.get("UserAgents"), "RequesterTenants": r.get("RequesterTenants"),
               "AuthenticationTypes": r.get("AuthenticationTypes"),
               "FirstCopy": _text(r.get("FirstCopy")), "LastCopy": _text(r.get("LastCopy")),
               **({"Unresolved": why} if (why := _unresolved(r)) else {})} for r in rows]
    destinations = sorted({str(c["Destination"]) for c in copies})
    full = {"copies": copies}
    evidence = {
        "destinations": [_cut(name) for name in destinations[:TOP_OBJECTS]],
        "requests": sum(c["Requests"] or 0 for c in copies),
        "copies": [_sampled(copy) for copy in copies[:TOP_CALLERS]],
        "callers": [{"Caller": c["Caller"]} for c in copies[:TOP_CALLERS] if c["Caller"]],
        "digest": evidence_digest(full),
        **credentials([r for r in rows if r.get("Side") == "source"]),
    }
    return (f"blobs copied to {', '.join(destinations[:3])}{' and more' if len(destinations) > 3 else ''}, "
            "outside the protected accounts", evidence, full)


def _destination_uris(row: dict) -> list[str]:
    return [uri for uri in row.get("DestinationUris") or [] if isinstance(uri, str) and uri]


def _destination(row: dict) -> str:
    """Where a copy went, in words: the account, or what the row says of it where it names none."""
    if row.get("DestinationAccount"):
        return row["DestinationAccount"]
    uris = _destination_uris(row)
    if uris:  # never the URI itself: its query string may hold a SAS
        return f"an account no storage endpoint names ({uris[0].split('://', 1)[-1].split('/', 1)[0].split('?', 1)[0]})"
    if row.get("ForeignTenants"):
        return f"another tenant ({', '.join(row['ForeignTenants'])})"
    return "a destination the scan could not resolve"


def _unresolved(row: dict) -> str | None:
    """Why a copy was judged out of scope without its destination being known, if it was."""
    if row.get("Unresolved"):
        return f"{row['Unresolved']}: judged out of scope (fail closed)"
    if not row.get("DestinationAccount") and _destination_uris(row):
        return ("its DestinationUri names no storage account the copy query can read (a blob or dfs endpoint, "
                "standard, DNS-zone, secondary or private link, or an IP-style URI): judged out of scope "
                "(fail closed)")
    return None


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
            *_bounded(callers))


def bulk_enumeration(activity: dict, context: Context):
    limit = context.settings.egress_enumeration_blobs
    callers = [_evidence(c, threshold_blobs=limit) for c in activity["callers"] if (c.get("Blobs") or 0) > limit]
    if not callers:
        return None
    return (f"{len(callers)} caller(s) read more than {limit} distinct blobs in one window", *_bounded(callers))


def canary_read(activity: dict, context: Context):
    """Any successful read of a canary blob (CONTAINMENT_CANARY_BLOBS), from any caller and
    any network: no job reads one, so whoever did has reached the dataset by a path nobody
    planned. The rows are the egress_canary query's, one per canary, caller, address and
    authentication type; the evidence names each, and each caller as the other rules do."""
    rows = sorted(activity.get("canary_reads") or [],
                  key=lambda r: (str(r.get("FirstRead")), str(r.get("Canary")), str(r.get("Caller"))))
    if not rows:
        return None
    reads = [{"Canary": r.get("Canary"), "Caller": r.get("Caller"), "Address": r.get("Address"),
              "AuthenticationType": r.get("AuthenticationType"), "Operations": r.get("Operations"),
              "Requests": r.get("Requests"), "FirstRead": _text(r.get("FirstRead")),
              "LastRead": _text(r.get("LastRead"))} for r in rows]
    callers: dict[str, dict[str, Any]] = {}
    for read in reads:
        caller = callers.setdefault(str(read["Caller"]), {
            "Caller": read["Caller"], "Requests": 0, "Canaries": [], "AuthenticationTypes": [], "Addresses": [],
            "FirstRead": read["FirstRead"], "LastRead": read["LastRead"]})
        caller["Requests"] += read["Requests"] or 0
        for name, value in (("Canaries", read["Canary"]), ("AuthenticationTypes", read["AuthenticationType"]),
                            ("Addresses", read["Address"])):
            if value not in caller[name]:
                caller[name].append(value)
        caller["FirstRead"] = min(caller["FirstRead"], read["FirstRead"])
        caller["LastRead"] = max(caller["LastRead"], read["LastRead"])
    canaries = sorted({str(read["Canary"]) for read in reads})
    full = {"reads": reads, "callers": sorted(callers.values(), key=lambda c: str(c["Caller"]))}
    evidence = {
        "canaries": [_cut(name) for name in canaries[:TOP_OBJECTS]],
        "caller_count": len(callers),
        "requests": sum(read["Requests"] or 0 for read in reads),
        "reads": [_sampled(read) for read in reads[:TOP_CALLERS]],
        "callers": [_sampled(caller) for caller in full["callers"][:TOP_CALLERS]],
        "digest": evidence_digest(full),
    }
    return (f"canary blob(s) {', '.join(canaries[:3])}{' and more' if len(canaries) > 3 else ''} read by "
            f"{len(callers)} caller(s): no job reads a canary", evidence, full)


def _text(value: Any) -> str:
    """A read's time as ISO 8601 UTC (the query's datetimes), any other value as text."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    return "" if value is None else str(value)


def logs_stopped(arrival: dict, context: Context):
    """A protected account whose blob logs no longer arrive in the workspace the scan reads: the
    scan is blind to it, and a leak would be silence. `arrival` is the account's row of the
    egress_arrival query (LastArrival, LastRow, Rows; none where it logged nothing in the lookback)
    as of `checked_at`, the end of that lookback. Two cases, said apart:
    - stopped: rows arrived in the lookback, none for CONTAINMENT_LOG_SILENCE_HOURS;
    - none in the lookback: no row at all in CONTAINMENT_EGRESS_BASELINE_DAYS (never sent here, or
      stopped earlier than that), for an account ARM says is older than the silence allowed
      (`properties.creationTime`, set by the service: read-only in storage spec 2026-09-01,
      StorageAccountProperties). A body without it gives no age, and a new account's logs cannot be
      missed yet: it is not said (the diagnostic setting rules judge its setting either way).
    The logs cannot tell a removed diagnostic setting from an account nobody touched (an unread
    account logs nothing): the evidence says both; the diagnostic setting rules say which.
    A weakness: it shows no one reaching the data, only that the app would not see it (containment.judge.rule)."""
    settings = context.settings
    checked = clock.instant(arrival.get("checked_at"))
    if checked is None:
        return None
    silence = timedelta(hours=settings.log_silence_hours)
    last = clock.instant(arrival.get("last_arrival"))
    evidence = {"last_arrival": arrival.get("last_arrival"), "last_row": arrival.get("last_row"),
                "rows_in_lookback": arrival.get("rows") or 0, "checked_at": arrival["checked_at"],
                "lookback_days": settings.egress_baseline_days, "silence_hours": settings.log_silence_hours}
    if last is not None:
        if checked - last < silence:
            return None
        hours = (checked - last) / timedelta(hours=1)
        return (f"no StorageBlobLogs row has arrived for {hours:.0f} hours (CONTAINMENT_LOG_SILENCE_HOURS is "
                f"{settings.log_silence_hours}): the egress scan is blind to this account",
                {**evidence, "arrival": "stopped",
                 "why": "its diagnostic setting stopped sending blob logs to this workspace, or nothing has read "
                        "or written the account since"})
    created = clock.instant(arrival.get("created"))
    if created is None or checked - created < silence:
        return None  # too new for its logs to be missed, or of no known age
    return (f"no StorageBlobLogs row in the {settings.egress_baseline_days}-day lookback: this account's logs have "
            "never arrived in this workspace, or stopped before that; the egress scan is blind to it",
            {**evidence, "arrival": "none in the lookback", "created": arrival.get("created"),
             "why": "no diagnostic setting sends its blob logs to this workspace, or nothing has read or written "
                    "the account in the lookback"})


def key_use_by_unexpected_caller(vault: dict, context: Context):
    """Key operations (KeyGet, KeyDecrypt, KeyUnwrap, KeyWrap, KeyPurge answered 2xx) on a key of a
    vault that holds a protected account's customer-managed key, by an identity that is neither in
    CONTAINMENT_ALLOWED_PRINCIPALS nor the managed identity of the protected account whose key it
    is, or by an allowed principal from an address outside CONTAINMENT_ALLOWED_CIDRS. `vault` holds
    the window's rows of the egress_vault_keys query for the vault (`uses`) and the protected
    accounts keyed in it (`keyed`: account, key name, the principal IDs of its encryption identity).
    The account's own identity is judged by identity alone: the Storage service unwraps its key
    itself, as a trusted service, from Azure's addresses, which no allowed network names
    (https://learn.microsoft.com/azure/storage/common/customer-managed-keys-overview,
    https://learn.microsoft.com/azure/key-vault/general/overview-vnet-service-endpoints#trusted-services).
    A row with no object ID (no token identity in the log) is no allowed principal (fail closed).
    An allowlist entry is judged at the use's last time (containment.judge.allowlist)."""
    settings = context.settings
    keyed = vault.get("keyed") or []
    callers = []
    for use in sorted(vault.get("uses") or [], key=lambda u: (str(u.get("Key")), str(u.get("Caller")),
                                                               str(u.get("Address")))):
        key = str(use.get("Key") or "").lower()
        owners = [k for k in keyed if str(k.get("key") or "").lower() == key]
        principal = str(use.get("ObjectId") or "").lower()
        own = bool(principal) and any(principal in k.get("identities", ()) for k in owners)
        why = []
        permitted = allowance(principal, settings, clock.instant(_text(use.get("LastUse"))))
        if not own and not permitted.allowed:
            why.append("no identity in the log" if not principal else
                       f"identity not allowed (its CONTAINMENT_ALLOWED_PRINCIPALS entry expired {permitted.expired})"
                       if permitted.expired else "identity not allowed")
        if not own and not _trusted(str(use.get("Address") or ""), settings.allowed_cidrs):
            why.append("address outside CONTAINMENT_ALLOWED_CIDRS")
        if why:
            callers.append({"Caller": use.get("Caller"), "ObjectId": use.get("ObjectId") or None,
                            "AppId": use.get("AppId") or None, "Upn": use.get("Upn") or None,
                            "Address": use.get("Address"), "Key": use.get("Key"), "Operations": use.get("Operations"),
                            "Requests": use.get("Requests"), "FirstUse": _text(use.get("FirstUse")),
                            "LastUse": _text(use.get("LastUse")), "UserAgents": use.get("UserAgents"),
                            "Accounts": [k["account"] for k in owners], "why": why})
    if not callers:
        return None
    operations = sorted({str(o) for c in callers for o in c["Operations"] or []})
    keys = sorted({str(c["Key"]) for c in callers})
    full = {"uses": callers}
    evidence = {
        "vault": vault.get("vault_host"),
        "keys": [_cut(k) for k in keys[:TOP_OBJECTS]],
        "accounts": sorted({a for c in callers for a in c["Accounts"]}),
        "operations": operations,
        "caller_count": len({str(c["Caller"]) for c in callers}),
        "requests": sum(c["Requests"] or 0 for c in callers),
        "callers": [_sampled(c) for c in callers[:TOP_CALLERS]],
        "digest": evidence_digest(full),
    }
    return (f"{', '.join(operations)} on key(s) {', '.join(keys[:3])}{' and more' if len(keys) > 3 else ''} of "
            f"{vault.get('vault_host')} by {evidence['caller_count']} unexpected caller(s): whoever unwraps a "
            "protected account's customer-managed key holds the key to its data", evidence, full)


RULES = (
    Rule("egress_anonymous_read", "critical", TABLE, anonymous_read, contained_by_severity=True),
    Rule("egress_key_or_sas_from_untrusted_network", "critical", TABLE, key_or_sas_from_untrusted_network,
         contained_by_severity=True),
    Rule("egress_canary_read", "critical", TABLE, canary_read, contained_by_severity=True),
    Rule("egress_copy_out_of_scope", "critical", TABLE, copy_out_of_scope, contained_by_severity=True),
    Rule("egress_volume_anomaly", "high", TABLE, volume_anomaly, contained_by_severity=True),
    Rule("egress_bulk_enumeration", "medium", TABLE, bulk_enumeration, contained_by_severity=True),
    # A weakness (containment.judge.rule): a SAS that outlives its policy, in hands not shown wrong.
    Rule("egress_sas_expiry_policy_violated", "medium", TABLE, sas_expiry_policy_violated,
         contained_by_severity=True, weakness=True),
    # A weakness: the app's own signal is lost; no one is shown reaching the data. Recorded only.
    Rule("egress_logs_stopped", "high", ARRIVAL, logs_stopped, weakness=True),
    # An exposure: someone outside the expected holds the key to a protected account's data. Recorded
    # only: no action of the app's takes a key use back (the vault's access is the vault rules' to contain).
    Rule("key_vault_key_use_by_unexpected_caller", "critical", VAULT_KEYS, key_use_by_unexpected_caller),
)
