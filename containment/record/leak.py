"""What leaked, in words: for one incident, the datasets, the objects and bytes read or
exposed, by whom (identity or address, authentication, which SAS or key), when, and whether
reads went on after containment. Pure: it reads the incident's decision records (their
findings and the full evidence they keep) and nothing else.

Two kinds of evidence say what leaked:

- **Reads** (the egress scan's findings, from StorageBlobLogs): who read how many blobs and
  bytes, when, with which credential. Counts and bytes are the logs' sums; object names are
  a sample (the query keeps a few URIs per caller and window). A SAS is described by its
  query string, whose signature the scan redacts before anything is recorded.
- **Exposures** (the storage, NSG and role findings): what someone *could* read, from when
  until containment. The app holds no data-plane role, so it can name a public container but
  not count its blobs; whether anyone used an exposure is in the account's StorageBlobLogs.
  Findings that are weaknesses (containment.judge.rule: a weakened control, such as no SAS
  expiry policy) are listed the same way, marked `weakness`, and said to expose no one.

`describe(incident)` gives a structured dict and a few plain-English sentences a data
protection officer reads first. It states what the records show and says what they cannot.
"""
from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timezone

from containment.core.findings import is_weakness
from containment.core.records import OPERATOR_OPERATIONS
from containment.judge.egress import sas_parameters
from containment.plan.registry import ACTIONS

NOT_HOLDING = "egress_containment_not_holding"
# Operations whose records name a person, not whoever caused the exposure.
MAX_CALLER_SENTENCES = 3
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_PERMISSIONS = {"r": "read", "a": "add", "c": "create", "w": "write", "d": "delete", "x": "delete versions",
                "y": "permanently delete", "l": "list", "t": "tags", "f": "find by tags", "m": "move",
                "e": "execute", "o": "change owner", "p": "change permissions", "i": "set immutability"}
_SAS_RESOURCE = {"b": "one blob", "c": "the container", "bs": "a blob snapshot", "bv": "a blob version",
                 "d": "a directory"}
# What a role's data path lets its principal do, as a person reads it (role_permissions names the paths).
_DATA_PATHS = (("listkeys", "list the account keys, and with them read and change every blob"),
               ("listaccountsas", "make account SAS tokens that read every blob"),
               ("listservicesas", "make SAS tokens for the account's containers and blobs"),
               ("blobs/read", "read every blob"),
               ("blobs/write", "write blobs"),
               ("generateuserdelegationkey", "make user-delegation SAS tokens"),
               # Key Vault key data actions (containment.judge.role_permissions.VAULT_KEY_PATHS)
               ("keys/decrypt/", "decrypt with the vault's keys"),
               ("keys/unwrap/", "unwrap the data's encryption keys with the vault's keys"),
               ("keys/wrap/", "wrap keys with the vault's keys"),
               ("keys/release/", "release the vault's keys"),
               ("keys/read", "read the vault's keys"),
               ("keys/update/", "disable the vault's keys, making the data they encrypt unreadable"),
               ("keys/delete", "delete the vault's keys, making the data they encrypt unreadable"),
               ("keys/purge/", "purge the vault's deleted keys, destroying the data they encrypt"))


# ---------------------------------------------------------------------------- the whole


def describe(incident) -> dict:
    """What leaked in the incident: datasets, reads, exposures, reads after containment, and
    the sentences that say it. Every value comes from the incident's records."""
    records = list(incident.decisions)
    callers, complete = _callers(records)
    exposures = _exposures(records)
    datasets = _datasets(records, callers, exposures)
    reads = _reads(callers, complete)
    after = _after_containment(incident, records, callers)
    leak = {"datasets": datasets, "reads": reads, "exposures": exposures, "after_containment": after}
    leak["sentences"] = sentences(leak, getattr(incident, "waiting", []) or [])
    return leak


# ---------------------------------------------------------------------------- reads


def _callers(records) -> tuple[list[dict], bool]:
    """Every caller the egress findings name, one entry per account and caller, summed over
    the scan windows they read in; and whether the list is complete (False when a finding
    kept only its top callers and its full evidence is not in the record)."""
    windows: dict[tuple[str, str, str], dict] = {}
    complete = True
    for record in records:
        for finding in record.findings:
            rule = finding.get("rule") or ""
            if not rule.startswith("egress_") or rule == NOT_HOLDING:
                continue  # reads after containment are in a window record of their own too
            evidence = finding.get("evidence") or {}
            full = (record.full_evidence or {}).get(evidence.get("digest") or "") or {}
            rows = full.get("callers") if isinstance(full.get("callers"), list) else evidence.get("callers") or []
            if not full and (evidence.get("caller_count") or 0) > len(rows):
                complete = False
            window = str(evidence.get("start") or record.key)
            for row in rows:
                if not isinstance(row, dict):
                    continue
                key = ((record.resource_id or "").lower(), window, str(row.get("Caller")))
                windows[key] = {**windows.get(key, {}), **row, "_account": record.resource_id or ""}
    merged: dict[tuple[str, str], dict] = {}
    for (account, _, name), row in windows.items():
        caller = merged.setdefault((account, name), {
            "account_id": row["_account"], "account": _names(row["_account"])[0], "caller": name,
            "bytes": 0, "requests": 0, "blobs": 0, "blobs_at_least": 0, "windows": 0, "authentication": [],
            "addresses": [],
            "untrusted_addresses": [], "sample_uris": [], "keys": [], "first_read": None, "last_read": None})
        caller["bytes"] += _number(row.get("Bytes"))
        caller["requests"] += _number(row.get("Requests"))
        caller["blobs"] += _number(row.get("Blobs"))
        caller["blobs_at_least"] = max(caller["blobs_at_least"], _number(row.get("Blobs")))
        caller["windows"] += 1
        for name, field in (("authentication", "AuthenticationTypes"), ("addresses", "Addresses"),
                            ("untrusted_addresses", "untrusted_addresses"), ("sample_uris", "SampleUris"),
                            ("keys", "Keys")):
            caller[name] += [str(v) for v in _list(row.get(field)) if str(v) not in caller[name]]
        first, last = moment(row.get("FirstRead")), moment(row.get("LastRead"))
        if first and (caller["first_read"] is None or first < caller["first_read"]):
            caller["first_read"] = first
        if last and (caller["last_read"] is None or last > caller["last_read"]):
            caller["last_read"] = last
    callers = sorted(merged.values(), key=lambda c: (-c["bytes"], -c["requests"], c["caller"]))
    for caller in callers:
        caller["identity"] = _identity(caller)
        caller["credential"] = credential(caller["authentication"], caller["sample_uris"], sorted(caller["keys"]))
        caller["containers"] = sorted({c for c, _ in map(_blob_path, caller["sample_uris"]) if c})
        # The logs count distinct blobs per window: over several windows the sum is an upper
        # bound, and the largest window's count (or the distinct names sampled) a lower one.
        sampled = {_blob_path(uri) for uri in caller["sample_uris"]}
        caller["blobs_at_least"] = min(caller["blobs"], max(caller["blobs_at_least"], len(sampled)))
    return callers, complete


def _reads(callers: list[dict], complete: bool) -> dict | None:
    if not callers:
        return None
    firsts = [c["first_read"] for c in callers if c["first_read"]]
    lasts = [c["last_read"] for c in callers if c["last_read"]]
    objects: dict[str, int] = {}
    for caller in callers:
        for uri in caller["sample_uris"]:
            container, path = _blob_path(uri)
            if container:
                name = f"{caller['account']}/{container}/{path}"
                objects[name] = objects.get(name, 0) + 1
    return {
        "callers": [{**c, "first_read": _iso(c["first_read"]), "last_read": _iso(c["last_read"])} for c in callers],
        "caller_count": len(callers),
        "complete": complete,
        "bytes": sum(c["bytes"] for c in callers),
        "requests": sum(c["requests"] for c in callers),
        # Distinct blobs per caller and window, summed: a blob read in two windows or by two
        # callers counts twice, so it is an upper bound; the lower bound is the largest
        # caller's count or the distinct blob names sampled, whichever is more.
        "blobs": sum(c["blobs"] for c in callers),
        "blobs_at_least": min(sum(c["blobs"] for c in callers),
                              max([len(objects)] + [c["blobs_at_least"] for c in callers])),
        "first_read": _iso(min(firsts)) if firsts else None,
        "last_read": _iso(max(lasts)) if lasts else None,
        "sampled_objects": [{"object": name, "callers": n} for name, n in
                            sorted(objects.items(), key=lambda item: (-item[1], item[0]))],
    }


def _identity(caller: dict) -> dict:
    """Who a caller is, as far as the logs can say: an Entra object ID for OAuth reads,
    otherwise only the client address (SAS, key and anonymous requests carry no identity)."""
    name, auth = caller["caller"], [a.lower() for a in caller["authentication"]]
    if _GUID.match(name) and "oauth" in auth:
        return {"kind": "object id", "object_id": name, "addresses": caller["addresses"],
                "text": f"the identity with object ID {name}"}
    anonymous = bool(auth) and set(auth) == {"anonymous"}
    where = f"from {name}" if _is_address(name) else f"named {name!r} in the logs"
    untrusted = ", outside the allowed networks," if caller["untrusted_addresses"] else ""
    return {"kind": "address", "address": name, "addresses": caller["addresses"],
            "text": f"{'an anonymous caller' if anonymous else 'a caller'} {where}{untrusted}"}


def credential(authentication: list[str], uris: list[str], keys: list[str] = ()) -> dict:
    """Which credential the reads used: the authentication types the logs name, the account
    keys that signed them (AuthenticationHash, as the egress query names them) and, for a
    SAS, what its query string says (kind, signer, scope, permissions, expiry)."""
    kinds = [str(a) for a in authentication]
    lowered = {k.lower() for k in kinds}
    sas = [d for d in (_sas(uri) for uri in uris) if d]
    parts = []
    if "anonymous" in lowered:
        parts.append("no credentials (anonymous access)")
    if "oauth" in lowered:
        parts.append("an Entra ID token (OAuth)")
    signer = f"account key {' and '.join(keys)}" if keys else ""
    if "accountkey" in lowered:
        parts.append(f"{signer or 'an account key'} (shared key)")
    if lowered & {"sas", "delegationsas"}:
        if sas:
            parts += sorted({d["text"] for d in sas})
        else:
            parts.append("a user-delegation SAS" if "delegationsas" in lowered else
                         f"a SAS token signed with {signer}" if signer else
                         "a SAS token (the sampled URIs carry no query string to say which)")
    parts += [f"authentication type {k}" for k in kinds
              if k.lower() not in ("anonymous", "oauth", "accountkey", "sas", "delegationsas")]
    signed_by_key = any(d["signed_with"] == "account key" for d in sas) or "accountkey" in lowered or (
        "sas" in lowered and not sas)
    return {"authentication": kinds, "sas": sas, "keys": list(keys),
            "text": " and ".join(parts) or "an unknown credential",
            "account_key_may_sign": signed_by_key}


def _sas(uri: str) -> dict | None:
    """What a SAS URI's query string says (the signature is redacted before it is recorded)."""
    query = sas_parameters(uri)
    if query is None:
        return None
    if query.get("skoid"):
        kind, signed = "a user-delegation SAS", f"a user-delegation key of object ID {query['skoid']}"
        signed_with = "user-delegation key"
    elif query.get("ss") or query.get("srt"):
        kind, signed, signed_with = "an account SAS", "an account key", "account key"
    else:
        kind, signed, signed_with = "a service SAS", "an account key", "account key"
    scope = _SAS_RESOURCE.get(query.get("sr", ""), "")
    permissions = ", ".join(_PERMISSIONS.get(p, p) for p in query.get("sp", ""))
    details = [f"signed with {signed}"]
    if scope:
        details.append(f"for {scope}")
    if permissions:
        details.append(f"allowing {permissions}")
    if query.get("si"):
        details.append(f"under stored access policy {query['si']!r}")
    if query.get("se"):
        details.append(f"valid until {query['se']}")
    if query.get("sip"):
        details.append(f"from addresses {query['sip']}")
    return {"kind": kind, "signed_with": signed_with, "signed_object_id": query.get("skoid"),
            "resource": query.get("sr"), "permissions": query.get("sp"), "policy": query.get("si"),
            "start": query.get("st"), "expiry": query.get("se"), "text": f"{kind} ({'; '.join(details)})"}


# ---------------------------------------------------------------------------- exposures


def _exposures(records) -> list[dict]:
    """What the storage, NSG and role findings exposed, one entry per resource and rule, with
    the time it began (the change's event time, when an event reported it) and how it ended:
    contained (when, by which action), held for a person, released, or only recorded."""
    exposures: dict[tuple[str, str], dict] = {}
    for record in records:
        if record.operation in OPERATOR_OPERATIONS or record.key.startswith("second-"):
            continue
        for finding in record.findings:
            rule = finding.get("rule") or ""
            if rule.startswith("egress_") or rule == "second_operator_required":
                continue
            resource = finding.get("resource_id") or record.resource_id or ""
            key = (resource.lower(), rule)
            if key in exposures:
                continue
            evidence = finding.get("evidence") or {}
            exposures[key] = {
                "kind": _kind(rule), "rule": rule, "resource_id": resource, "summary": finding.get("summary") or "",
                "severity": finding.get("severity"), "evidence": evidence,
                "since": _iso(moment(record.event_time)) if record.event_id else None,
                "found_at": record.decided_at, "caused_by": _who(record.actor) if record.event_id else None,
                "found_by": "an event" if record.event_id else (record.operation or "a scan").replace("_", " "),
                "own_deployment": record.own_deployment, "dry_run": record.outcome == "would-contain",
                "weakness": is_weakness(finding),
            }
    for exposure in exposures.values():
        exposure.update(_ending(records, exposure))
    return list(exposures.values())


# The key-access rules (containment.judge.keys): a caller listed the keys, or a SAS signed with them.
KEY_LISTINGS = ("storage_keys_listed_by_unallowed_principal", "storage_sas_listed_by_unallowed_principal")


def _kind(rule: str) -> str:
    if rule == "storage_container_public_access":
        return "public container"
    if rule.startswith("role_assignment"):
        return "role grant"
    if rule.startswith("nsg_"):
        return "network"
    if rule in KEY_LISTINGS:
        return "key listing"
    if rule.startswith("storage_"):
        return "account setting"
    return "other"


def _contains(actions, rule: str) -> bool:
    """Whether these actions contain a rule's finding: the action that fixes the rule, or,
    for a public container, turning anonymous access off on its account (which refuses
    every anonymous request whatever the container's level)."""
    fixed = {rule for name in actions if name in ACTIONS for rule in ACTIONS[name].fixed_rules}
    return rule in fixed or (rule == "storage_container_public_access" and "disable_blob_public_access" in actions)


def _ending(records, exposure: dict) -> dict:
    """How one exposure ended, or did not, from the records about its resource or carrying
    its finding: contained (when, by what), held for a person (since when), released (by
    whom, when), or only recorded."""
    resource, rule = exposure["resource_id"].lower(), exposure["rule"]
    about = [r for r in records if (r.resource_id or "").lower() == resource
             or any((f.get("resource_id") or "").lower() == resource for f in r.findings)]
    contained = [r for r in about if r.outcome == "contained" and r.operation != "release" and r.contained_at
                 and _contains(r.actions, rule)]
    released = [r for r in about if r.operation == "release"]
    settled = {r.key.rsplit(".", 1)[0] for r in about if r.operation == "approval" and "." in r.key}
    held = [r for r in about if r.key not in settled and _contains([s.get("action") for s in r.awaiting_approval],
                                                                    rule)]
    return {
        "contained_at": contained[0].contained_at if contained else None,
        "contained_by": ", ".join(a for a in contained[0].actions if _contains([a], rule)) if contained else None,
        "held_since": held[0].decided_at if held and not contained else None,
        "released_at": released[-1].decided_at if released else None,
        "released_by": _who(released[-1].actor) if released else None,
    }


# ---------------------------------------------------------------------------- datasets


def _datasets(records, callers: list[dict], exposures: list[dict]) -> list[dict]:
    """The account, container and (from sampled reads) path prefix of the data concerned."""
    found: dict[tuple[str, str | None], dict] = {}

    def add(account_id: str, container: str | None, basis: str, path: str | None = None) -> None:
        account = _names(account_id)[0]
        if not account:
            return
        entry = found.setdefault((account.lower(), container), {
            "account": account, "container": container, "prefix": None, "paths": [], "basis": [],
            "account_id": _account_id(account_id)})
        if basis not in entry["basis"]:
            entry["basis"].append(basis)
        if path is not None and path not in entry["paths"]:
            entry["paths"].append(path)

    for caller in callers:
        containers = [_blob_path(uri) for uri in caller["sample_uris"]]
        if not any(c for c, _ in containers):
            add(caller["account_id"], None, "reads")
        for container, path in containers:
            if container:
                add(caller["account_id"], container, "sampled reads", path)
    for exposure in exposures:
        if exposure["kind"] == "role grant":
            for covered in _list(exposure["evidence"].get("covers")):
                add(str(covered), _names(str(covered))[1], "role scope")
        elif exposure["kind"] in ("public container", "account setting", "key listing"):
            account, container = _names(exposure["resource_id"])
            if account:
                add(exposure["resource_id"], container, "weakened control" if exposure["weakness"] else
                    "exposed resource")
    datasets = list(found.values())
    for entry in datasets:
        entry["prefix"] = _prefix(entry.pop("paths"))
    # An account listed whole and by container: keep the containers, which say more.
    named = {d["account"].lower() for d in datasets if d["container"]}
    return [d for d in datasets if d["container"] or d["account"].lower() not in named
            or {"role scope", "exposed resource", "weakened control"} & set(d["basis"])]


def _prefix(paths: list[str]) -> str | None:
    """The longest folder prefix every sampled path shares ("2026/11/" of "2026/11/a.parquet")."""
    if not paths:
        return None
    folders = [p.rsplit("/", 1)[0] + "/" if "/" in p else "" for p in paths]
    common = folders[0]
    for folder in folders[1:]:
        while not folder.startswith(common):
            common = common[:-1].rsplit("/", 1)[0] + "/" if "/" in common[:-1] else ""
    return common or None


# ---------------------------------------------------------------------------- after containment


def _after_containment(incident, records, callers: list[dict]) -> dict | None:
    """Whether reads went on after containment: the app's own `.not-holding` records, and
    callers whose last read the logs date after the containment."""
    if not callers and not any(r.key.endswith(".not-holding") for r in records):
        return None  # no reads in this incident: nothing the logs could say went on
    contained = getattr(incident, "contained_at", None)
    not_holding = [r for r in records if r.key.endswith(".not-holding")]
    late: dict[str, dict] = {}
    for record in not_holding:
        for finding in record.findings:
            for row in _list((finding.get("evidence") or {}).get("callers")):
                if isinstance(row, dict):
                    entry = late.setdefault(str(row.get("Caller")), {"caller": str(row.get("Caller")), "requests": 0,
                                                                     "bytes": 0, "last_read": None})
                    entry["requests"] += _number(row.get("Requests"))
                    entry["bytes"] += _number(row.get("Bytes"))
                    entry["last_read"] = max(filter(None, (entry["last_read"], _iso(moment(row.get("LastRead"))))),
                                             default=None)
    if contained is not None:
        for caller in callers:
            if caller["last_read"] and caller["last_read"] > contained and caller["caller"] not in late:
                late[caller["caller"]] = {"caller": caller["caller"], "requests": None, "bytes": None,
                                          "last_read": _iso(caller["last_read"])}
    # Reads only weaknesses named (a SAS outliving its policy) are not a leak to contain.
    weak = all(is_weakness(f) for r in records for f in r.findings) and any(r.findings for r in records)
    return {"contained_at": _iso(contained), "continued": bool(late) if contained or late else None,
            "callers": list(late.values()), "decisions": [r.key for r in not_holding], "weaknesses_only": weak}


# ---------------------------------------------------------------------------- sentences


def sentences(leak: dict, waiting: list[dict]) -> list[str]:
    """A few plain-English sentences: the reads first, then the exposures, then whether
    reads went on after containment and what still waits."""
    said = []
    reads = leak["reads"]
    if reads:
        said += _read_sentences(reads)
    settings: dict[tuple, list[dict]] = {}
    for exposure in leak["exposures"]:
        if exposure["kind"] == "account setting":
            # One account's settings, opened and closed together, are one sentence; its weaknesses another.
            settings.setdefault((exposure["resource_id"].lower(), exposure["since"], exposure["contained_at"],
                                 exposure["released_at"], exposure["held_since"], exposure["weakness"]),
                                []).append(exposure)
            continue
        text = _exposure_sentence(exposure)
        if text:
            said.append(text)
    said += [_settings_sentence(group) for group in settings.values()]
    after = leak["after_containment"]
    if after is not None:
        said.append(_after_sentence(after))
    if reads and any(c["credential"]["account_key_may_sign"] for c in reads["callers"]):
        rotation = [w for w in waiting if w.get("action") == "rotate_account_keys"]
        if rotation:
            said.append(f"The account keys are not rotated yet: rotate_account_keys waits for "
                        f"{rotation[0].get('waits_for') or 'approval'} since {at_time(rotation[0].get('since'))}; "
                        "until then a key, and every SAS signed with it, still reads the data from any network the "
                        "account admits.")
    if not said:
        said.append("The records of this incident name no data read or exposed.")
    return said


def _read_sentences(reads: dict) -> list[str]:
    callers = reads["callers"]
    if len(callers) <= MAX_CALLER_SENTENCES:
        said = [_caller_sentence(c) for c in callers]
    else:
        kinds = sorted({c["credential"]["text"] for c in callers})
        how = f"all using {kinds[0]}" if len(kinds) == 1 else f"using {len(kinds)} kinds of credential"
        accounts = sorted({_where(c) for c in callers})
        said = [f"{len(callers):,} callers read {_blobs(reads['blobs_at_least'], reads['blobs'])} "
                f"({human_size(reads['bytes'])} in {reads['requests']:,} requests) from {_and(accounts)} "
                f"{between(moment(reads['first_read']), moment(reads['last_read']))}, {how}."]
        top = ", ".join(f"{c['caller']} ({human_size(c['bytes'])})" for c in callers[:MAX_CALLER_SENTENCES])
        said.append(f"The most active: {top}.")
    if not reads["complete"]:
        said.append("The record keeps only the top callers of a window; the totals above count those.")
    return said


def _caller_sentence(caller: dict) -> str:
    who = caller["identity"]["text"]
    first, last = moment(caller["first_read"]), moment(caller["last_read"])
    blobs = _blobs(caller["blobs_at_least"], caller["blobs"])
    return (f"{who[0].upper()}{who[1:]} read {blobs} ({human_size(caller['bytes'])} in "
            f"{caller['requests']:,} request{'s' if caller['requests'] != 1 else ''}) from {_where(caller)} "
            f"{between(first, last)} using {caller['credential']['text']}.")


def _where(caller: dict) -> str:
    containers = caller["containers"]
    return _and([f"{caller['account']}/{c}" for c in containers]) if containers else caller["account"]


def _exposure_sentence(exposure: dict) -> str | None:
    kind, evidence = exposure["kind"], exposure["evidence"]
    account, container = _names(exposure["resource_id"])
    by, since = exposure["caused_by"], exposure["since"]
    found = _found(exposure)
    if kind == "public container":
        what = "read its blobs and list them" if evidence.get("publicAccess") == "Container" else "read its blobs"
        opened = (f"{by} set the container {account}/{container} to public access at {at_time(since)}: anyone on the "
                  f"internet could {what} without credentials" if by and since else
                  f"The container {account}/{container} let anyone on the internet {what} without credentials"
                  f"{f' from {at_time(since)}' if since else found}")
        how = ("it was made private" if "make_container_private" in (exposure["contained_by"] or "") else
               "anonymous access was turned off on its account")
        return (f"{opened}{_end(exposure, how)}. Every blob in it was exposed; how many it holds "
                "the app cannot say (it has no data-plane access), and whether anyone read them is in the "
                "account's StorageBlobLogs (anonymous GetBlob requests).")
    if kind == "role grant":
        principal = f"{evidence.get('principalType') or 'principal'} {evidence.get('principalId') or '(unknown)'}"
        role = evidence.get("roleName") or "a role"
        could = _and(sorted({_could(path) for path in _list(evidence.get("data_paths"))})) or "reach the data"
        covers = _and(sorted({"/".join(n for n in _names(str(c)) if n) for c in _list(evidence.get("covers"))}))
        covers = covers or "protected data"
        opened = (f"{by} granted {principal} the role {role} over {covers} at {at_time(since)}" if by and since else
                  f"{principal} held the role {role} over {covers}{f' from {at_time(since)}' if since else found}")
        inherited = (f" The assignment is inherited from {evidence['inherited_from']}: "
                     f"{evidence.get('must_act') or 'its owner'} must remove it."
                     if evidence.get("inherited_from") else "")
        paths = [str(path).lower() for path in _list(evidence.get("data_paths"))]
        vault = any("microsoft.keyvault" in path for path in paths)
        blobs = not vault or any("microsoft.keyvault" not in path for path in paths)
        logs = ((" Reads by it show in StorageBlobLogs under its object ID." if blobs else "")
                + (" Its key operations show in the vault's AZKVAuditLogs under its object ID." if vault else ""))
        return f"{opened}, which let it {could}{_end(exposure, 'the assignment was deleted')}.{logs}{inherited}"
    if kind == "key listing":
        who = " ".join(str(part) for part in (evidence.get("principalType") or "a caller",
                                               evidence.get("principalName") or evidence.get("principalId")
                                               or "(unidentified)"))
        what = ("listed the account keys" if exposure["rule"] == KEY_LISTINGS[0] else
                "had ARM sign a SAS with an account key")
        where = f" from {evidence['clientIpAddress']}" if evidence.get("clientIpAddress") else ""
        when = f" at {at_time(evidence['eventTime'])}" if evidence.get("eventTime") else found
        grant = f" (allowed by {evidence['role']})" if evidence.get("role") else ""
        keys = _and([str(k) for k in _list(evidence.get("keys"))]) or "the keys"
        return (f"{who} {what} of {account}{where}{when}{grant}: {keys} must be taken as known"
                f"{_end(exposure, 'the keys were rotated')}. Reads with a key or a SAS carry no identity in "
                "StorageBlobLogs: only their address and which key signed them show.")
    if kind == "network":
        outbound = bool(evidence.get("untrusted_destinations"))
        where = _and([str(s) for s in
                      _list(evidence.get("untrusted_sources") or evidence.get("untrusted_destinations"))])
        ports = ", ".join(str(p) for p in _list(evidence.get("destinationPorts")))
        nsg = _names_nsg(exposure["resource_id"])
        opened = (f"{'After a change by ' + by + ', the' if by else 'The'} network security group {nsg} let "
                  f"{evidence.get('protocol') or 'any protocol'} traffic on port(s) {ports or 'any'} "
                  f"{'out to' if outbound else 'in from'} {where or 'untrusted addresses'} "
                  f"(rule {evidence.get('rule')}, priority {evidence.get('priority')})"
                  f"{f' from {at_time(since)}' if since else found}")
        return (f"{opened}{_end(exposure, 'it was blocked')}. It exposes the network the group protects, not named "
                "blobs: which datasets sit behind it is not in the record.")
    return None


def _found(exposure: dict) -> str:
    if exposure["since"]:
        return ""
    return f", found by the {exposure['found_by']} at {at_time(exposure['found_at'])} (when it began is not recorded)"


# What an account's setting allowed, in the past tense (containment.judge.storage finds them).
_SETTINGS = {
    "storage_blob_public_access_allowed": "allowed anonymous access to blobs (a container set to public was "
                                          "readable by anyone on the internet)",
    "storage_network_open_to_internet": "accepted connections from any network (a key, a SAS or a granted identity "
                                        "could read from anywhere)",
    "storage_shared_key_access_allowed": "let its account keys, and SAS tokens signed with them, read the data",
    "storage_cross_tenant_replication_allowed": "allowed object replication to accounts in other tenants",
    "storage_sas_expiry_policy_missing": "had no SAS expiration policy within the limit (a SAS signed for longer was "
                                         "accepted, valid as long as it said)",
    "storage_key_expiry_policy_missing": "had no key expiration policy (nothing reminded anyone to rotate its keys)",
    "storage_keys_older_than_limit": "kept access keys older than the limit (every SAS signed with them stays valid "
                                     "until it expires)",
    # containment.judge.encryption
    "storage_customer_key_unavailable": "could not be read or written by anyone: its customer-managed key was "
                                        "disabled or deleted (an availability breach)",
    "storage_customer_key_outside_watch": "was encrypted with a customer-managed key held where the app cannot "
                                          "check it",
    "storage_encryption_not_customer_managed": "was encrypted with Microsoft-managed keys where customer-managed "
                                               "keys are required",
    "storage_infrastructure_encryption_off": "had no infrastructure encryption where it is required",
}


def _setting(exposure: dict) -> str:
    evidence, rule = exposure["evidence"], exposure["rule"]
    if rule == "storage_tls_below_1_2":
        return f"accepted {str(evidence.get('minimumTlsVersion') or 'TLS1_0').replace('_', '.')} connections"
    if rule == "storage_scope_tag_removed":
        return (f"no longer carried the tag {evidence.get('expected_tag') or 'of protected data'} that marks its data "
                "as synthetic data to protect, though it lies under a protected scope,")
    return _SETTINGS.get(rule) or f"was found so: {exposure['summary']}"


def _settings_sentence(group: list[dict]) -> str:
    first = group[0]
    account, _ = _names(first["resource_id"])
    allowed = _and([_setting(x) for x in group])
    by, since = first["caused_by"], first["since"]
    found = _found(first)
    opened = (f"After a change by {by}, the account {account} {allowed}" if by else
              f"The account {account} {allowed}")
    weakened = (" A weakened control: it shows no one able to reach the data who should not, so it is no "
                "personal-data breach on its own." if first["weakness"] else "")
    return f"{opened}{f' from {at_time(since)}' if since else found}{_end(first, 'it was contained')}.{weakened}"


def _end(exposure: dict, contained: str) -> str:
    """How the exposure ended, or did not, as the end of a sentence."""
    start = exposure["since"] or exposure["found_at"]
    took = _duration(moment(exposure["since"]), moment(exposure["contained_at"]))
    later = f" ({took} later)" if took else ""
    ended = (f", until {contained} at {at_time(exposure['contained_at'], start, start)}{later}"
             if exposure["contained_at"] else "")
    if exposure["released_at"]:
        return (f"{ended}; {exposure['released_by'] or 'a person'} released the containment at "
                f"{at_time(exposure['released_at'], exposure['contained_at'] or exposure['since'])}, which put the "
                "exposure back")
    if ended:
        return ended
    if exposure["held_since"]:
        return f"; it is still open: its containment waits for a person since {at_time(exposure['held_since'], start)}"
    if exposure["own_deployment"]:
        return "; it is not contained: it is the app's own deployment, which only a person changes"
    if exposure["dry_run"]:
        return "; it is not contained (dry-run: the app only recorded what it would do)"
    return "; it is recorded, not contained (its rule is not one the app contains automatically)"


def _could(path: str) -> str:
    lowered = path.lower()
    return next((words for key, words in _DATA_PATHS if key in lowered), f"use {path}")


def _after_sentence(after: dict) -> str:
    if after["continued"] is None:
        if after.get("weaknesses_only"):
            return ("The app contained nothing: its findings are weaknesses only, which show no one who should not "
                    "read the data reading it.")
        return "The reads were not contained: nothing holds them back."
    if not after["continued"]:
        return (f"No read by these callers was seen after containment at {at_time(after['contained_at'])}, in the "
                "logs scanned so far.")
    who = _and([c["caller"] + (f" ({c['requests']:,} requests, {human_size(c['bytes'])})" if c["requests"] else "")
                for c in after["callers"]])
    last = max((c["last_read"] for c in after["callers"] if c["last_read"]), default=None)
    by = f" (decision {_and(after['decisions'])})" if after["decisions"] else ""
    until = f", last at {at_time(last, after['contained_at'])}" if last else ""
    return (f"Reads went on after containment at {at_time(after['contained_at'])}: {who} read again{until}; the "
            f"app recorded that the containment is not holding{by}.")


# ---------------------------------------------------------------------------- small words


def human_size(count: int | float) -> str:
    count = int(count or 0)
    for unit, size in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if count >= size * (0.5 if unit == "GiB" else 1):
            return f"{count / size:.2f} {unit}" if unit == "GiB" else f"{count / size:.1f} {unit}"
    return f"{count} bytes"


def _blobs(at_least: int, at_most: int) -> str:
    if at_least >= at_most:
        return f"{at_most:,} blob{'s' if at_most != 1 else ''}"
    return f"between {at_least:,} and {at_most:,} distinct blobs"


def between(first: datetime | None, last: datetime | None) -> str:
    if first is None and last is None:
        return "(the logs give no time)"
    first, last = first or last, last or first
    if first == last:
        return f"at {_clock(first, seconds=True)} UTC on {_day(first)}"
    seconds = first.strftime("%H:%M") == last.strftime("%H:%M")
    if first.date() == last.date():
        return f"between {_clock(first, seconds)} and {_clock(last, seconds)} UTC on {_day(first)}"
    return f"between {_clock(first, seconds)} UTC on {_day(first)} and {_clock(last, seconds)} UTC on {_day(last)}"


def at_time(text, day_of=None, seconds_as=None) -> str:
    """A time as a person reads it: without its date when it is the date of `day_of`, with
    seconds when it has them (or `seconds_as` has them)."""
    when, other, companion = moment(text), moment(day_of), moment(seconds_as)
    if when is None:
        return str(text) if text else "an unknown time"
    clock = f"{_clock(when, seconds=when.second != 0 or bool(companion and companion.second))} UTC"
    return clock if other is not None and other.date() == when.date() else f"{clock} on {_day(when)}"


def _clock(when: datetime, seconds: bool) -> str:
    return when.strftime("%H:%M:%S" if seconds else "%H:%M")


def _day(when: datetime) -> str:
    return f"{when.day} {when.strftime('%b %Y')}"


def _duration(start: datetime | None, end: datetime | None) -> str | None:
    if start is None or end is None or end < start:
        return None
    seconds = round((end - start).total_seconds())
    if seconds < 120:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    if seconds < 7200:
        return f"{seconds // 60} minutes"
    return f"{seconds / 3600:.1f} hours"


def _and(items: list[str]) -> str:
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else ""


def _who(actor: dict) -> str | None:
    return (actor or {}).get("name") or (actor or {}).get("object_id") or (actor or {}).get("app_id")


def moment(value) -> datetime | None:
    """A time from a record or a log row (ISO 8601 of any precision, with a space or a T)."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when else None


def _number(value) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _names(resource_id: str) -> tuple[str, str | None]:
    """(account, container) an ARM ID names, read leniently: a record may hold anything."""
    parts = str(resource_id or "").split("/")
    lowered = [p.lower() for p in parts]
    account = container = None
    if "storageaccounts" in lowered:
        index = lowered.index("storageaccounts")
        account = parts[index + 1] if index + 1 < len(parts) else None
        if "containers" in lowered[index:]:
            at = lowered.index("containers", index)
            container = parts[at + 1] if at + 1 < len(parts) else None
    return account or "", container


def _account_id(resource_id: str) -> str:
    parts = str(resource_id or "").split("/")
    lowered = [p.lower() for p in parts]
    if "storageaccounts" not in lowered:
        return resource_id
    return "/".join(parts[:lowered.index("storageaccounts") + 2])


def _names_nsg(resource_id: str) -> str:
    parts = str(resource_id or "").split("/")
    lowered = [p.lower() for p in parts]
    if "networksecuritygroups" in lowered:
        index = lowered.index("networksecuritygroups")
        if index + 1 < len(parts):
            return parts[index + 1]
    return resource_id


def _blob_path(uri: str) -> tuple[str | None, str]:
    """(container, blob path) of a blob URI or an account-relative "container/path"."""
    text = str(uri).split("?", 1)[0]
    if "://" in text:
        text = text.split("://", 1)[1].split("/", 1)[1] if "/" in text.split("://", 1)[1] else ""
    container, _, path = text.strip("/").partition("/")
    return (container or None), path
