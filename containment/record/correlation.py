"""Which breach a finding belongs to: one breach, one incident, across resources.

A finding carries signs of what caused it and what it is about:
- `identity <id>`: the object ID of the identity whose change an event reported, and each
  caller an egress rule fired on (an object ID, or the address of a caller with a key, a
  SAS or no credential): one identity opening five accounts is one breach;
- `resource <ARM ID>`: a resource found again (the drift sweep, a containment, a release);
- `dataset <account ID>`: the storage account the resource holds data in (a container,
  the account, a role assignment scoped to either): a public container and the anonymous
  reads from its account are one breach;
- `credential <account ID> key1` or `credential <account ID> sas <hash>`: an account key or
  a SAS (the SHA-256 of its signature, never the SAS) a finding's evidence names as used or
  pulled (`keys`, `sas_signatures`), qualified by the account it belongs to: the listing of a
  key and the reads with a SAS it signed, or two accounts' findings that name one leaked SAS,
  are one breach. At most CREDENTIAL_SIGNS a record, so the signs stay few (they are read
  FILTER_ROWS to a query and written in one transaction).

The person who acts on a finding (an approver, a break-glass operator) is never a sign: an
on-call engineer who contains two unrelated exposures does not make them one incident.

A finding joins the incident that one of its signs was last seen in, if that was within
CONTAINMENT_INCIDENT_WINDOW_HOURS and the incident's first exposure was detected no more than
72 hours earlier (GDPR Art. 33(1): past that, its notification clock has run out, and a new
finding starts a clock of its own); an incident of weaknesses only has no clock yet, so only
the window applies, and its first exposure starts the 72 hours. Where several incidents
qualify, the earliest detected. Else it opens a new incident. A closed incident's signs are forgotten, so nothing joins it.
Records with no finding belong to no incident unless they settle one (an approval, a
release, an assessment): those carry the incident of what they settle.

The signs live in the ledger (Ledger.incident_signs); two instances that open an incident
on the same sign at once cannot both win (a conditional transaction), so the loser joins
the winner's incident. Two findings that share no sign and race are two incidents, which an
operator can merge (containment.operate.incidents).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import datetime, timedelta

from containment.adapters.runtime import Runtime
from containment.core.findings import is_weakness
from containment.core.records import DecisionRecord
from containment.record.incidents import GDPR_NOTIFICATION, OPERATOR_OPERATIONS, parse_time

_ACCOUNT = re.compile(r"^(/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.storage/storageaccounts/[^/]+)",
                      re.IGNORECASE)
ATTEMPTS = 3  # a lost race re-reads the signs and joins the winner; more losses than this is a storm of one sign
CREDENTIAL_SIGNS = 12  # both keys and ten SAS hashes: what one bounded finding names


def signs_of(record: DecisionRecord) -> list[str]:
    """What a finding is caused by and about, as index keys (lower-cased, in a fixed order)."""
    signs: list[str] = []
    if record.event_id and record.operation not in OPERATOR_OPERATIONS:
        actor = str(record.actor.get("object_id") or "").lower()
        if actor:
            signs.append(f"identity {actor}")
    credentials: list[str] = []
    for finding in record.findings:
        evidence = finding.get("evidence") or {}
        for caller in evidence.get("callers") or []:
            if isinstance(caller, dict) and caller.get("Caller"):
                signs.append(f"identity {str(caller['Caller']).lower()}")
        account = _ACCOUNT.match(str(finding.get("resource_id") or record.resource_id or "").lower())
        if account:
            credentials += [f"credential {account.group(1)} {str(key).lower()}" for key in evidence.get("keys") or []]
            credentials += [f"credential {account.group(1)} sas {str(sas).lower()}"
                            for sas in evidence.get("sas_signatures") or []]
    signs += list(dict.fromkeys(credentials))[:CREDENTIAL_SIGNS]
    if record.resource_id:
        resource = record.resource_id.lower()
        signs.append(f"resource {resource}")
        account = _ACCOUNT.match(resource)
        if account:
            signs.append(f"dataset {account.group(1)}")
    return list(dict.fromkeys(signs))


def new_incident_id(record: DecisionRecord) -> str:
    """Named by the finding that opened it: a redelivery of that finding names the same incident."""
    digest = hashlib.sha256(f"{record.key} {(record.resource_id or '').lower()}".encode()).hexdigest()[:12]
    return f"inc-{(record.decided_at or '')[:10].replace('-', '')}-{digest}"


def joins(sign: dict, exposed_at: str | None, at: datetime, window: timedelta) -> bool:
    """Whether a finding at `at` joins the incident a sign entry names, whose first exposure
    was detected at `exposed_at` (None while it holds weaknesses only: no clock runs)."""
    return (at - parse_time(sign["last_at"]) <= window
            and (not exposed_at or at - parse_time(exposed_at) <= GDPR_NOTIFICATION))


def detected(record: DecisionRecord) -> str:
    return record.event_time or record.decided_at or ""


def is_exposure(record: DecisionRecord) -> bool:
    """Whether a finding of the record is an exposure (anything but a weakness)."""
    return any(not is_weakness(finding) for finding in record.findings)


def assign(runtime: Runtime, record: DecisionRecord) -> DecisionRecord:
    """The record with its incident: kept where it has one (it settles or follows one), none
    where it found nothing, else the incident its signs lead to (containment.record.correlation).
    An incident's first exposure is kept once, in a marker of its own (Ledger.incident_markers),
    so the 72 hours a later finding may join within never count from a weakness, whichever
    signs it shares."""
    if record.incident is not None or not record.findings or record.outcome in ("compliant", "ignored", "rejected"):
        return record
    signs, at = signs_of(record), parse_time(record.decided_at)
    window = timedelta(hours=runtime.settings.incident_window_hours)
    for _ in range(ATTEMPTS):
        seen = runtime.ledger.incident_signs(signs)
        recent = [entry for entry in seen.values() if at - parse_time(entry["last_at"]) <= window]
        markers = runtime.ledger.incident_markers(sorted({e["incident"] for e in recent})) if recent else {}
        live = sorted((e for e in recent if not markers.get(e["incident"], {}).get("closed")
                       and joins(e, markers.get(e["incident"], {}).get("exposed_at"), at, window)),
                      key=lambda e: e["opened_at"])
        incident, opened = ((live[0]["incident"], live[0]["opened_at"]) if live
                            else (new_incident_id(record), detected(record)))
        # The incident's first exposure: this record's, where none was marked before.
        exposed = detected(record) if is_exposure(record) and not markers.get(incident, {}).get("exposed_at") else None
        if runtime.ledger.mark_incident_signs(signs, seen, incident, opened, record.decided_at, exposed):
            return replace(record, incident=incident)
    raise RuntimeError(f"decision {record.key}: its incident signs kept changing under it ({ATTEMPTS} attempts)")
