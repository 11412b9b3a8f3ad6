"""Every app setting the app reads, typed, with its default, validated once.

A bad value stops the function with one error that lists every bad setting by name, what
was given and what is accepted, so an operator fixes them all in one round. The table
`SETTINGS` is the single source: the README's settings table and
local.settings.sample.json are checked against it by the tests.
"""
from __future__ import annotations

import ipaddress
import math
import os
import re
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from containment.core.ids import MalformedResourceId, parse_resource_id

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


class SettingsError(ValueError):
    """One or more app settings are invalid; `problems` names each one."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid app settings:\n  " + "\n  ".join(problems))


def _items(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def _choice(*accepted: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in accepted:
            raise ValueError(f"accepted: {', '.join(accepted)}")
        return raw
    return parse


_mode = _choice("dry-run", "enforce")


def _boolean(raw: str) -> bool:
    return _choice("false", "true")(raw.lower()) == "true"


def _guids(raw: str) -> frozenset[str]:
    if raw and not _items(raw):  # only separators: a typo must not widen the scope to "every"
        raise ValueError("no GUID given; accepted: comma-separated GUIDs, or empty")
    bad = [item for item in _items(raw) if not _GUID.match(item)]
    if bad:
        raise ValueError(f"{', '.join(bad)} not a GUID; accepted: comma-separated GUIDs")
    return frozenset(item.lower() for item in _items(raw))


def _optional_guid_named(what: str) -> Callable[[str], str | None]:
    def parse(raw: str) -> str | None:
        if not raw:
            return None
        if not _GUID.match(raw.strip()):
            raise ValueError(f"accepted: one GUID ({what})")
        return raw.strip().lower()
    return parse


_optional_guid = _optional_guid_named("the object ID of the app's managed identity")


def _optional_workspace(raw: str) -> str | None:
    if not raw:
        return None
    try:
        workspace = parse_resource_id(raw.strip())
    except MalformedResourceId:
        workspace = None
    if workspace is None or not workspace.is_type("Microsoft.OperationalInsights/workspaces"):
        raise ValueError("accepted: the resource ID of a Log Analytics workspace "
                         "(/subscriptions/.../providers/Microsoft.OperationalInsights/workspaces/NAME), or empty")
    return raw.strip()


def _allowlist(raw: str) -> dict[str, "datetime | None"]:
    """`<object id>[@<expiry>]`, comma-separated. The expiry is an ISO 8601 UTC date or time;
    a date alone allows the grant through the end of that day (UTC)."""
    allowed, bad = {}, []
    for item in _items(raw):
        principal, _, until = item.partition("@")
        principal = principal.strip().lower()
        expiry = None
        try:
            if not _GUID.match(principal):
                raise ValueError
            if until:
                if re.fullmatch(r"\d{4}-\d{2}-\d{2}", until.strip()):
                    expiry = datetime.fromisoformat(until.strip()).replace(tzinfo=timezone.utc) + timedelta(days=1)
                else:
                    expiry = datetime.fromisoformat(until.strip().replace("Z", "+00:00"))
                    if expiry.tzinfo is None:
                        raise ValueError
        except ValueError:
            bad.append(item)
            continue
        allowed[principal] = expiry
    if bad:
        raise ValueError(f"{', '.join(bad)} not understood; accepted: comma-separated object IDs, each optionally "
                         "followed by @YYYY-MM-DD or @YYYY-MM-DDThh:mm:ssZ (allowed until then)")
    return allowed


SCOPE_LEVELS = ("managementGroup", "subscription", "resourceGroup", "resource")


def _scope_levels(raw: str) -> frozenset[str]:
    levels = _items(raw)
    bad = [level for level in levels if level not in SCOPE_LEVELS]
    if bad:
        raise ValueError(f"{', '.join(bad)} unknown; accepted: comma-separated from {', '.join(SCOPE_LEVELS)}")
    return frozenset(levels)


def _positive(kind: type, accepted: str) -> Callable[[str], Any]:
    def parse(raw: str):
        try:
            value = kind(raw)
        except ValueError:
            raise ValueError(f"accepted: {accepted}") from None
        # nan and inf parse as floats, and a NaN threshold would switch a signal off silently.
        if not math.isfinite(value) or value <= 0 or value > 10**9:
            raise ValueError(f"accepted: {accepted}, finite and at most 1e9")
        return value
    return parse


def _whole_between(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise ValueError(f"accepted: a whole number from {low} to {high}")
        return int(raw)
    return parse


def _count(raw: str) -> int:
    if not raw.isdigit() or int(raw) > 10**9:
        raise ValueError("accepted: a whole number, 0 or more")
    return int(raw)


def _ncrontab(raw: str) -> str:
    """Six fields (second minute hour day month weekday), as the Functions timer reads them."""
    fields = raw.split()
    if len(fields) != 6 or not all(re.fullmatch(r"[0-9*/,\-A-Za-z]+", f) for f in fields):
        raise ValueError("accepted: a six-field NCRONTAB expression such as '0 */5 * * * *'")
    return raw


@dataclass(frozen=True)
class Vocabulary:
    """The names settings may use: every containment action, and the rules an action can
    contain. The registry (containment.plan.registry) supplies it, so settings name only
    what is declared there."""

    actions: frozenset[str]
    containable_rules: frozenset[str]


def _egress_containment(raw: str, known: Vocabulary) -> dict[str, tuple[str, ...]]:
    """`severity:action+action;severity:...`, which containment each egress severity gets."""
    mapping, bad = {}, []
    for part in (p.strip() for p in raw.split(";") if p.strip()):
        severity, colon, actions = part.partition(":")
        names = tuple(a.strip() for a in actions.split("+") if a.strip())
        # Without its colon a severity would map to no actions: a typo must not switch containment off.
        if (not colon or severity.strip() not in ("low", "medium", "high", "critical")
                or any(a not in known.actions for a in names)):
            bad.append(part)
            continue
        mapping[severity.strip()] = names
    if bad:
        raise ValueError(f"{'; '.join(bad)} not understood; accepted: severity:action+action;... with severities "
                         f"low, medium, high, critical and actions from {', '.join(sorted(known.actions))}")
    return mapping


def _action_names(raw: str, known: Vocabulary) -> frozenset[str]:
    names = _items(raw)
    bad = [n for n in names if n not in known.actions]
    if bad:
        raise ValueError(f"{', '.join(bad)} unknown; accepted: comma-separated from {', '.join(sorted(known.actions))}")
    return frozenset(names)


def _tag(raw: str) -> tuple[str, str]:
    name, sep, value = raw.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise ValueError("accepted: name=value")
    return name.strip(), value.strip()


def _resource_ids(raw: str) -> tuple[str, ...]:
    ids, bad = [], []
    for item in _items(raw):
        try:
            ids.append(parse_resource_id(item.rstrip("/")).text)
        except MalformedResourceId:
            bad.append(item)
    if bad:
        raise ValueError(f"{', '.join(bad)} not an ARM ID; accepted: comma-separated subscription, "
                         "resource-group or resource IDs")
    return tuple(ids)


def _cidrs(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks, bad, everyone = [], [], []
    for item in _items(raw):
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            bad.append(item)
            continue
        if network.prefixlen == 0:  # every address: NSG and egress containment would never act
            everyone.append(item)
        else:
            networks.append(network)
    problems = [f"{', '.join(bad)} not a CIDR"] if bad else []
    if everyone:
        problems.append(f"{', '.join(everyone)} would trust every address on the internet")
    for version, whole in ((4, "0.0.0.0/0"), (6, "::/0")):
        # However it is split (0.0.0.0/1,128.0.0.0/1), the whole address space is still everyone.
        if [str(n) for n in ipaddress.collapse_addresses(n for n in networks if n.version == version)] == [whole]:
            problems.append(f"together they cover every IPv{version} address ({whole})")
    if problems:
        raise ValueError(f"{'; '.join(problems)}; accepted: comma-separated CIDRs such as 10.20.0.0/16, none of them /0")
    return tuple(networks)


# A canary's path as StorageBlobLogs' ObjectKey gives it: /account/container/blob. Account
# names: https://learn.microsoft.com/en-us/azure/azure-resource-manager/management/resource-name-rules
# (3-24 lower-case letters and digits); a blob name is any 1-1024 characters, of which these
# refuse the ones a KQL string literal would have to escape (quote, backslash, control characters).
_CANARY = re.compile(r"^/?(?P<account>[a-z0-9]{3,24})/(?P<container>[^/]+)/(?P<blob>[^\x00-\x1f\x7f\"\\]{1,1024})$")


def _canary_blobs(raw: str) -> tuple[str, ...]:
    """Canary blobs as ObjectKey names them (`/account/container/blob`), in the order given."""
    canaries, bad = [], []
    for item in _items(raw):
        match = _CANARY.match(item)
        if (match is None or match["blob"].endswith("/")
                or not (re.match(_QUEUE_OR_CONTAINER, match["container"]) or match["container"] in ("$root", "$web"))):
            bad.append(item)
        else:
            canaries.append(f"/{match['account']}/{match['container']}/{match['blob']}")
    if bad:
        raise ValueError(f"{', '.join(bad)} not a blob path; accepted: comma-separated account/container/blob paths "
                         "such as synthdata01/train/customers-2026-q3.parquet")
    return tuple(dict.fromkeys(canaries))


# Queues and blob containers share one naming rule:
# https://learn.microsoft.com/en-us/rest/api/storageservices/naming-queues-and-metadata and
# https://learn.microsoft.com/en-us/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata
_QUEUE_OR_CONTAINER = r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$"


def _name(pattern: str, accepted: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if not re.match(pattern, raw):
            raise ValueError(f"accepted: {accepted}")
        return raw
    return parse


# Table names: https://learn.microsoft.com/en-us/rest/api/storageservices/understanding-the-table-service-data-model
_table_name = _name(r"^[A-Za-z][A-Za-z0-9]{2,62}$", "a table name (3-63 letters and digits, starting with a letter)")
_container_name = _name(_QUEUE_OR_CONTAINER, "a blob container name (3-63 lower-case letters, digits, dashes)")


def _containable_rule_ids(raw: str, known: Vocabulary) -> frozenset[str]:
    wanted = _items(raw)
    unknown = [item for item in wanted if item not in known.containable_rules]
    if unknown:
        raise ValueError(f"{', '.join(unknown)} cannot be contained automatically; accepted: comma-separated "
                         f"rule IDs from {', '.join(sorted(known.containable_rules))}")
    return frozenset(wanted)


def _loopback_endpoint(raw: str) -> str | None:
    """The local emulator's URL. Only loopback is honoured: a setting that could point the
    app's ARM calls (and its bearer tokens) at another host must never take effect."""
    if not raw:
        return None
    parts = urlsplit(raw)
    host = (parts.hostname or "").lower()
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme != "https" or not loopback or parts.path not in ("", "/"):
        raise ValueError("accepted: https://127.0.0.1:PORT (loopback only; empty in Azure)")
    return raw.rstrip("/")


def _https_url(raw: str) -> str | None:
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("accepted: an https:// URL (the topic's endpoint), or empty")
    return raw


def _existing_file(raw: str) -> str | None:
    if not raw:
        return None
    if not Path(raw).is_file():
        raise ValueError("accepted: the path of the emulator's CA certificate (PEM)")
    return raw


@dataclass(frozen=True)
class Setting:
    name: str
    field: str
    default: str
    parse: Callable[..., Any]  # (raw) or, for names of actions and rules, (raw, Vocabulary)
    meaning: str

    @property
    def uses_vocabulary(self) -> bool:
        return self.parse in (_egress_containment, _action_names, _containable_rule_ids)


SETTINGS: tuple[Setting, ...] = (
    Setting("CONTAINMENT_MODE", "mode", "dry-run", _mode,
            "`enforce` acts; `dry-run` records what it would do and changes nothing"),
    Setting("CONTAINMENT_SUBSCRIPTIONS", "subscriptions", "", _guids,
            "comma-separated subscription IDs the app may act in; events about any other are "
            "recorded `rejected` (empty: every subscription the identity can see)"),
    Setting("CONTAINMENT_SCOPE_TAG", "scope_tag", "data-classification=synthetic", _tag,
            "`name=value` of the tag that marks synthetic-data resources; name and value are compared without case, "
            "after Unicode normalisation (NFKC) and with invisible characters removed, so `Synthetic` or a zero-width "
            "character does not un-protect an account"),
    Setting("CONTAINMENT_PROTECTED_SCOPES", "protected_scopes", "", _resource_ids,
            "comma-separated resource or resource-group IDs protected with or without the tag"),
    Setting("CONTAINMENT_SELF_PRINCIPAL_ID", "self_principal_id", "", _optional_guid,
            "object ID of the app's own managed identity; changes it makes are not re-judged"),
    Setting("CONTAINMENT_OWN_SCOPES", "own_scopes", "", _resource_ids,
            "comma-separated resource-group or resource IDs of the app's own deployment; judged, and findings there "
            "reported (at least high) and notified, never acted on (infra sets the app's resource group)"),
    Setting("CONTAINMENT_ALLOWED_PRINCIPALS", "allowed_principals", "", _allowlist,
            "comma-separated object IDs allowed to hold data-access roles on protected scopes and to list their keys "
            "or SAS; "
            "`<id>@2026-12-31` (or `@2026-12-31T18:00:00Z`) allows it until then, a date through its last second (UTC)"),
    Setting("CONTAINMENT_ALLOWED_CIDRS", "allowed_cidrs", "", _cidrs,
            "comma-separated CIDRs allowed to reach protected data (NSG sources, egress callers); a /0 "
            "(every address), or CIDRs that together cover every IPv4 or IPv6 address, is refused"),
    Setting("CONTAINMENT_CANARY_BLOBS", "canary_blobs", "", _canary_blobs,
            "comma-separated `account/container/blob` paths of decoy blobs planted in synthetic datasets, which no "
            "job reads: any successful read of one, from any caller and any network, is a critical egress finding "
            "(empty: none)"),
    Setting("CONTAINMENT_SAS_MAX_EXPIRY_HOURS", "sas_max_expiry_hours", "24", _positive(float, "hours > 0"),
            "longest SAS expiration period (`sasPolicy.sasExpirationPeriod`) a protected account may allow; an account "
            "with no SAS expiration policy, or a longer one, is a posture finding (recorded, never contained)"),
    Setting("CONTAINMENT_KEY_MAX_AGE_DAYS", "key_max_age_days", "90", _positive(float, "days > 0"),
            "oldest an account access key of a protected account may be (`keyCreationTime`); an older key, or one "
            "with no recorded creation time, is a posture finding (recorded, never contained)"),
    Setting("CONTAINMENT_REQUIRE_CUSTOMER_KEYS", "require_customer_keys", "false", _boolean,
            "`true`: a protected account encrypted with Microsoft-managed keys (`encryption.keySource` not "
            "`Microsoft.Keyvault`) is a posture finding (recorded, never contained)"),
    Setting("CONTAINMENT_REQUIRE_INFRASTRUCTURE_ENCRYPTION", "require_infrastructure_encryption", "false", _boolean,
            "`true`: a protected account without infrastructure (double) encryption "
            "(`encryption.requireInfrastructureEncryption`) is a posture finding (recorded, never contained)"),
    Setting("CONTAINMENT_VAULT_MIN_SOFT_DELETE_DAYS", "vault_min_soft_delete_days", "90", _whole_between(7, 90),
            "shortest soft-delete retention (`softDeleteRetentionInDays`, 7 to 90) a Key Vault holding synthetic data's "
            "keys may keep; a shorter one is a `key_vault_purge_protection_off` finding (the retention is fixed when the "
            "vault is created)"),
    Setting("CONTAINMENT_QUEUE", "containment_queue", "containment-requests",
            _name(_QUEUE_OR_CONTAINER, "a storage queue name (3-63 lower-case letters, digits, dashes)"),
            "Storage queue that carries containment requests from detection to the isolated containment function"),
    Setting("CONTAINMENT_AUTO_CONTAIN", "auto_contain",
            "storage_blob_public_access_allowed,storage_container_public_access,role_assignment_grants_data_access,"
            "nsg_inbound_admits_untrusted_sources,storage_keys_listed_by_unallowed_principal,"
            "storage_sas_listed_by_unallowed_principal,storage_replication_to_unprotected_destination,"
            "diagnostic_setting_removed,diagnostic_setting_not_sending_reads,policy_assignment_removed,"
            "policy_assignment_not_enforced,key_vault_key_access_by_unallowed_principal",
            _containable_rule_ids,
            "comma-separated rule IDs whose findings are contained automatically (in `enforce`); "
            "findings of every other rule are recorded `reported`. The key-listing rules' action, rotating the "
            "keys, waits for a person by default (CONTAINMENT_APPROVAL_ACTIONS): `pending-approval`; so does "
            "restoring a policy assignment, always"),
    Setting("CONTAINMENT_ROLE_DELETION_APPROVAL_SCOPES", "role_deletion_approval_scopes",
            "managementGroup,subscription", _scope_levels,
            "scope levels (managementGroup, subscription, resourceGroup, resource) at which deleting a risky role "
            "assignment is left to a person: recorded `pending-approval`, not deleted"),
    Setting("CONTAINMENT_NSG_STRATEGY", "nsg_strategy", "deny-above",
            _choice("deny-above", "disable-rule"),
            "how an NSG rule that opens synthetic data is contained: `deny-above` adds a Deny with precedence "
            "over it (falling back to `disable-rule` where no priority is free), `disable-rule` sets it to Deny"),
    Setting("CONTAINMENT_APPROVAL_ACTIONS", "approval_actions", "rotate_account_keys", _action_names,
            "containment actions that always wait for a person (`pending-approval`): rotating keys breaks every "
            "client that uses them"),
    Setting("CONTAINMENT_APPROVAL_EXPIRY_HOURS", "approval_expiry_hours", "24", _positive(float, "hours > 0"),
            "a decision waiting for approval expires after this long: approving it later is refused, and the "
            "drift sweep records it expired"),
    Setting("CONTAINMENT_IMPACT_PREVIEW_DAYS", "impact_preview_days", "7", _positive(int, "whole days > 0"),
            "how many days of StorageBlobLogs the impact preview of an action held for approval reads: who used the "
            "key, the user-delegation SAS or the network path it takes away, how often and when last"),
    Setting("CONTAINMENT_RELEASE_HOURS", "release_hours", "24", _positive(float, "hours > 0"),
            "after a release, how long the released resource stays exempt (listed under exemptions, removable): findings on it are recorded `exempt`, not contained again"),
    Setting("CONTAINMENT_EXEMPTION_MAX_DAYS", "exemption_max_days", "30", _positive(float, "days > 0"),
            "longest an exemption may last: one that expires later is refused (400, on the record)"),
    Setting("CONTAINMENT_MUTE_MAX_DAYS", "mute_max_days", "14", _positive(float, "days > 0"),
            "longest a mute of a rule's notifications may last: one that expires later is refused (400, on the "
            "record)"),
    Setting("CONTAINMENT_MAX_ACTIONS_PER_HOUR", "max_actions_per_hour", "20", _positive(int, "a whole number > 0"),
            "blast-radius limit: containment actions per rolling hour across all instances; beyond it decisions "
            "wait for approval (approved and break-glass actions are not counted against it)"),
    Setting("CONTAINMENT_HIGH_SEVERITY_RESERVE", "high_severity_reserve", "5", _count,
            "of the blast-radius limit, the actions only high and critical findings may spend: lower-severity decisions are held once the limit less this reserve is spent"),
    Setting("CONTAINMENT_BREAK_GLASS_PER_HOUR", "break_glass_per_hour", "10", _positive(int, "a whole number > 0"),
            "break-glass actions per rolling hour, a budget of their own (beyond it a request is refused, 429, on the record), apart from the automatic blast-radius limit"),
    Setting("CONTAINMENT_ROLE_ASSIGNMENT_WAIT_SECONDS", "role_assignment_wait_seconds", "4",
            _positive(float, "seconds > 0"),
            "how long a role assignment an event names is read again while ARM does not show it yet (a new "
            "assignment can take seconds to be readable) before it is taken as gone"),
    Setting("CONTAINMENT_INCIDENT_WINDOW_HOURS", "incident_window_hours", "24", _positive(float, "hours > 0"),
            ("a finding joins the incident one of its signs (the identity that caused it, the resource, "
             "the storage account) was last seen in within this long, if that incident's first exposure was "
             "detected at most 72 hours before (an incident of weaknesses only: the window alone)")),
    Setting("CONTAINMENT_CONTROLS_CACHE_SECONDS", "controls_cache_seconds", "10", _whole_between(0, 60),
            "how long an instance uses the exemptions and mutes it read before reading them again (0: on every "
            "decision): an exemption or mute removed on one instance can still hold back a containment or a "
            "notice on another for this long (the instance that removes it forgets its own copy at once)"),
    Setting("CONTAINMENT_NETWORK_LOCK", "network_lock", "deny-by-default",
            _choice("deny-by-default", "disable-public-network-access"),
            "how `lock_account_network` locks an account: `networkAcls.defaultAction=Deny` keeping its IP and "
            "virtual-network rules (authorised training keeps working), or `publicNetworkAccess=Disabled`"),
    Setting("CONTAINMENT_LOG_WORKSPACE_ID", "log_workspace_id", "", _optional_guid_named("the workspace ID (GUID) of "
            "the Log Analytics workspace that holds StorageBlobLogs"),
            "Log Analytics workspace ID that receives the protected accounts' StorageBlobLogs; empty: the egress "
            "scan records that it cannot run"),
    Setting("CONTAINMENT_LOG_WORKSPACE_RESOURCE_ID", "log_workspace_resource_id", "", _optional_workspace,
            "resource ID of that same workspace: a protected account's blob diagnostic setting that sends to another "
            "workspace is a finding (diagnostic_setting_not_sending_reads), and only a setting sending there alone is "
            "kept as last good and put back; empty: only the StorageRead category is judged, and no diagnostic "
            "setting is ever put back"),
    Setting("CONTAINMENT_EGRESS_SCHEDULE", "egress_schedule", "0 */5 * * * *", _ncrontab,
            "NCRONTAB schedule of the egress scan"),
    Setting("CONTAINMENT_SWEEP_SCHEDULE", "sweep_schedule", "0 0 * * * *", _ncrontab,
            "NCRONTAB schedule of the drift sweep, which re-judges every protected resource of "
            "CONTAINMENT_SUBSCRIPTIONS through ARM list calls and closes expired approvals"),
    Setting("CONTAINMENT_NOTIFY_SCHEDULE", "notify_schedule", "0 5 * * * *", _ncrontab,
            "NCRONTAB schedule of the notification timer: each notified incident's Article 33 notices (assessment "
            "due within 24 hours, deadline passed), and the digest of findings recorded `reported` (at most one an "
            "hour)"),
    Setting("CONTAINMENT_EGRESS_WINDOW_MINUTES", "egress_window_minutes", "5", _positive(int, "whole minutes > 0"),
            "length of one scan window; thresholds are per caller per window"),
    Setting("CONTAINMENT_EGRESS_LAG_MINUTES", "egress_lag_minutes", "10", _positive(int, "whole minutes > 0"),
            "how long ago the newest scanned window ends: resource logs arrive 3 to 10 minutes late"),
    Setting("CONTAINMENT_EGRESS_MAX_WINDOWS", "egress_max_windows", "12", _positive(int, "a whole number > 0"),
            "most windows one scan covers: after downtime the scan catches up this many at a time"),
    Setting("CONTAINMENT_EGRESS_BASELINE_DAYS", "egress_baseline_days", "7", _positive(int, "whole days > 0"),
            "lookback of a caller's baseline (its history of bytes read per window)"),
    Setting("CONTAINMENT_LOG_SILENCE_HOURS", "log_silence_hours", "24", _positive(int, "whole hours > 0"),
            "a protected account that had StorageBlobLogs rows in the baseline lookback and none arrived for this "
            "many hours is a finding (egress_logs_stopped): the egress scan is blind to it"),
    Setting("CONTAINMENT_EGRESS_VOLUME_FLOOR_MB", "egress_volume_floor_mb", "2048", _positive(float, "MB > 0"),
            "bytes read by one caller in one window never count as anomalous below this (MB)"),
    Setting("CONTAINMENT_EGRESS_VOLUME_SIGMAS", "egress_volume_sigmas", "4", _positive(float, "a number > 0"),
            "a known caller is anomalous above its baseline mean plus this many standard deviations"),
    Setting("CONTAINMENT_EGRESS_NEW_CALLER_MB", "egress_new_caller_mb", "512", _positive(float, "MB > 0"),
            "a caller with no history in the baseline is anomalous above this many MB in one window"),
    Setting("CONTAINMENT_EGRESS_ENUMERATION_BLOBS", "egress_enumeration_blobs", "1000",
            _positive(int, "a whole number > 0"),
            "distinct blobs read by one caller in one window above which it is bulk enumeration"),
    Setting("CONTAINMENT_EGRESS_CONTAINMENT", "egress_containment",
            "critical:disable_blob_public_access+lock_account_network+revoke_user_delegation_keys+rotate_account_keys;"
            "high:lock_account_network+revoke_user_delegation_keys",
            _egress_containment,
            "containment per egress finding severity, `severity:action+action;...` (a severity not listed is "
            "recorded only)"),
    Setting("CONTAINMENT_NOTIFY_TOPIC_ENDPOINT", "notify_topic_endpoint", "", _https_url,
            "Event Grid custom topic endpoint (`https://<topic>.<region>-1.eventgrid.azure.net/api/events`) that "
            "receives the notifications as CloudEvents: per incident (detected, contained, held, failed, "
            "assessment due, deadline passed, assessed, closed), every operator act and failure outside an incident, "
            "and the hourly digest of `reported` findings; empty: none"),
    Setting("CONTAINMENT_LEDGER_TABLE", "ledger_table", "decisions",
            _table_name,
            "Table Storage table that holds the decision ledger (decisions, claims and their indexes)"),
    Setting("CONTAINMENT_EVIDENCE_CONTAINER", "evidence_container", "evidence",
            _container_name,
            "blob container, beside the ledger, that keeps what a ledger entity cannot hold (a finding's full "
            "evidence, an NSG's thousand rules before and after), named by decision and SHA-256"),
    Setting("CONTAINMENT_LEDGER_CHAIN_TABLE", "chain_table", "decisionchains",
            _table_name,
            "Table Storage table that holds the ledger's evidence chains: each decision's place, its SHA-256 and "
            "the previous record's, so a record changed or deleted since is found (`python -m containment verify`)"),
    Setting("CONTAINMENT_LEDGER_DIGEST_CONTAINER", "digest_container", "ledger-digests",
            _container_name,
            "blob container, under a time-based immutability policy (infra), where the drift sweep writes the "
            "chains' heads every run, never overwriting one: rewriting the ledger before a digest shows"),
    Setting("LOCAL_AZURE_ENDPOINT", "local_azure_endpoint", "", _loopback_endpoint,
            "development only: the local ARM + Log Analytics emulator's URL; honoured for loopback "
            "addresses only; empty in Azure (the app then uses Azure Resource Manager and managed identity)"),
    Setting("LOCAL_AZURE_CA_BUNDLE", "local_azure_ca_bundle", "", _existing_file,
            "development only: the emulator's CA certificate (PEM), trusted for the emulator alone"),
)


@dataclass(frozen=True)
class Settings:
    mode: str
    subscriptions: frozenset[str]
    scope_tag: tuple[str, str]
    protected_scopes: tuple[str, ...]
    self_principal_id: str | None
    own_scopes: tuple[str, ...]
    allowed_principals: dict
    allowed_cidrs: tuple
    canary_blobs: tuple[str, ...]
    sas_max_expiry_hours: float
    key_max_age_days: float
    require_customer_keys: bool
    require_infrastructure_encryption: bool
    vault_min_soft_delete_days: int
    containment_queue: str
    auto_contain: frozenset[str]
    role_deletion_approval_scopes: frozenset[str]
    nsg_strategy: str
    approval_actions: frozenset[str]
    approval_expiry_hours: float
    impact_preview_days: int
    max_actions_per_hour: int
    role_assignment_wait_seconds: float
    release_hours: float
    high_severity_reserve: int
    exemption_max_days: float
    mute_max_days: float
    break_glass_per_hour: int
    incident_window_hours: float
    controls_cache_seconds: int
    notify_topic_endpoint: str | None
    network_lock: str
    log_workspace_id: str | None
    log_workspace_resource_id: str | None
    egress_schedule: str
    sweep_schedule: str
    notify_schedule: str
    egress_window_minutes: int
    egress_lag_minutes: int
    egress_max_windows: int
    egress_baseline_days: int
    log_silence_hours: int
    egress_volume_floor_mb: float
    egress_volume_sigmas: float
    egress_new_caller_mb: float
    egress_enumeration_blobs: int
    egress_containment: dict
    ledger_table: str
    evidence_container: str
    chain_table: str
    digest_container: str
    local_azure_endpoint: str | None
    local_azure_ca_bundle: str | None

    @property
    def enforcing(self) -> bool:
        return self.mode == "enforce"

    def is_own(self, resource_id: str) -> bool:
        """Whether the resource belongs to the app's own deployment (reported, never acted on)."""
        key = resource_id.lower()
        return any(key == scope.lower() or key.startswith(scope.lower() + "/") for scope in self.own_scopes)


def load_settings(environ: Mapping[str, str] | None, vocabulary: Vocabulary) -> Settings:
    """Read and validate every setting (the process environment where `environ` is None);
    raise SettingsError naming all the bad ones."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    problems: list[str] = []
    for setting in SETTINGS:
        raw = environ.get(setting.name, setting.default).strip()
        try:
            values[setting.field] = setting.parse(raw, vocabulary) if setting.uses_vocabulary else setting.parse(raw)
        except ValueError as error:
            problems.append(f"{setting.name}={raw!r}: {error}")
    given = {name: bool(environ.get(name, "").strip()) for name in ("LOCAL_AZURE_ENDPOINT", "LOCAL_AZURE_CA_BUNDLE")}
    if values.get("high_severity_reserve", 0) >= values.get("max_actions_per_hour", math.inf):
        # The defaults agree, so the operator set one of them: the problem names that one
        # (the reserve, if both), so the fix is clear.
        blamed = next(name for name in ("CONTAINMENT_HIGH_SEVERITY_RESERVE", "CONTAINMENT_MAX_ACTIONS_PER_HOUR")
                      if environ.get(name, "").strip())
        problems.append(f"{blamed}={environ.get(blamed, '').strip()!r}: CONTAINMENT_HIGH_SEVERITY_RESERVE "
                        f"({values['high_severity_reserve']}) must be less than CONTAINMENT_MAX_ACTIONS_PER_HOUR "
                        f"({values['max_actions_per_hour']}), or nothing below high severity could ever be contained")
    if len(set(given.values())) > 1:
        problems.append("LOCAL_AZURE_ENDPOINT and LOCAL_AZURE_CA_BUNDLE: set both (local emulator) or neither (Azure)")
    if problems:
        raise SettingsError(problems)
    assert {f.name for f in fields(Settings)} == set(values)  # the table and the dataclass agree
    return Settings(**values)
