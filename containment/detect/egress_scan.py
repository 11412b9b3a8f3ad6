"""The egress scan: what happens every few minutes (timer) to find synthetic data leaving.

    checkpoint -> windows that are due (ending an ingestion lag ago, at most N per run)
    -> each caller's baseline (one lookback query, reused for the hour)
    -> the watch, once an hour: the protected accounts (ARM list) and when each one's logs last
       arrived (one arrival query for every account); an account whose logs stopped is recorded
    -> per window: the window query, the copy query (and, with CONTAINMENT_CANARY_BLOBS set, the
       canary query; with a protected account keyed by a customer-managed key, the vault key query)
    -> per protected account (and per such vault) with findings: decide -> record or claim + enqueue
    -> advance the checkpoint (ETag-guarded)

A window's decision is keyed by account and window, so a scan re-run over the same
window finds nothing new. A query that does not answer completely ends the scan as a
`failed` record and leaves the checkpoint where it was: the next scan retries the window.
An account that cannot be judged or recorded is a `failed` record naming it, and the scan
goes on with the other accounts: one account must never keep a leak on another from being
found. So is a list ARM does not give when the copies are resolved (the storage accounts of
a subscription, the tenants): the window is judged all the same, each copy it leaves
unresolved out of scope (fail closed). A failure that repeats, the scan's or an account's, is one record, counted until the
scan gets through again (containment.record.repeats).
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

from containment.adapters import arm, log_analytics
from containment.adapters.runtime import Runtime, current
from containment.core import clock
from containment.core.ids import KEY_VAULT, STORAGE_ACCOUNT, MalformedResourceId, parse_resource_id
from containment.core.findings import Finding
from containment.core.records import DecisionRecord, describe_failure
from containment.judge.customer_keys import customer_key_of, encryption_identity
from containment.judge.egress import ARRIVAL, TABLE, VAULT_KEYS
from containment.judge.rule import Context
from containment.judge.scope import protection_of
from containment.plan.decisions import decide, failed, not_holding, recorded, within_incident
from containment.plan.registry import judge
from containment.record.conclude import acted_in_incident, conclude, record_once
from containment.record.repeats import Repeats

log = logging.getLogger("containment")
# What a scan reads: the accounts named in the logs (and listed, for the watch), the vault a key
# use names (read to spell its ID as ARM does), and the logs (workspace query, per table).
PERMISSIONS = ("Microsoft.Storage/storageAccounts/read", "Microsoft.KeyVault/vaults/read",
               "Microsoft.OperationalInsights/workspaces/read",
               "Microsoft.OperationalInsights/workspaces/query/read",
               "Microsoft.OperationalInsights/workspaces/query/StorageBlobLogs/read",
               "Microsoft.OperationalInsights/workspaces/query/AZKVAuditLogs/read")
CHECKPOINT = "egress_scan"
_NUMBER = (int, float)
# The columns the rules read, with their types: anything else in an answer fails the scan.
# (ResourceId is any: a row that names no account in scope is passed over, not trusted.)
WINDOW_COLUMNS = {"ResourceId": object, "Caller": (str, type(None)), "Bytes": _NUMBER, "Blobs": _NUMBER, "Requests": _NUMBER,
                  "AnonymousRequests": _NUMBER, "KeyOrSasRequests": _NUMBER, "Addresses": list, "SampleUris": list,
                  "AuthenticationTypes": list, "Keys": list, "SasSignatures": list, "SasPolicyViolations": _NUMBER,
                  "SasExpiryStatuses": list, "UnknownKeyRequests": _NUMBER}
COPY_COLUMNS = {"ResourceId": object, "Operation": str, "Side": str, "SourceAccount": (str, type(None)),
                "DestinationAccount": (str, type(None)), "Caller": (str, type(None)), "Requests": _NUMBER,
                "Objects": list, "SourceUris": list, "DestinationUris": list, "Keys": list, "SasSignatures": list,
                "UnknownKeyRequests": _NUMBER, "RequesterTenants": list}
CANARY_COLUMNS = {"ResourceId": object, "Canary": str, "Caller": (str, type(None)), "Address": (str, type(None)),
                  "AuthenticationType": (str, type(None)), "Requests": _NUMBER, "Operations": list}
BASELINE_COLUMNS = {"ResourceId": str, "Caller": (str, type(None)), "Mean": _NUMBER, "StdDev": _NUMBER, "ActiveWindows": _NUMBER}
ARRIVAL_COLUMNS = {"ResourceId": object, "Rows": _NUMBER, "LastRow": datetime, "LastArrival": datetime}
VAULT_KEY_COLUMNS = {"ResourceId": object, "VaultHost": str, "Key": str, "Caller": (str, type(None)),
                     "ObjectId": (str, type(None)), "Address": (str, type(None)), "Requests": _NUMBER,
                     "Operations": list, "FirstUse": datetime, "LastUse": datetime}
OPERATION = "egress_scan"
# How long after it was generated a row may arrive and still be scanned: the window query's
# timespan (which bounds TimeGenerated) reaches this far back before its window of ingestion time.
MAX_ARRIVAL_DELAY = timedelta(days=2)
# The baseline's lookback ends on the hour: every scan within an hour asks the same
# question, so the answer (the scan's largest query) is kept by the instance and reused.
BASELINE_REFRESH = timedelta(hours=1)
SCAN = ""  # the scope of a failure of the scan itself, rather than of one account


def run_egress_scan(runtime: Runtime | None = None) -> list[DecisionRecord]:
    runtime = runtime or current()
    settings = runtime.settings
    failures = Repeats(runtime, OPERATION, "egress")
    if settings.log_workspace_id is None:
        windows, _ = due_windows(runtime, clock.now())
        return _failed(runtime, failures, windows[0], "CONTAINMENT_LOG_WORKSPACE_ID is not set: no logs to scan") \
            if windows else []
    try:
        # An instance whose clock runs ahead must not scan (and move the checkpoint past) a
        # window the service has not filled yet: the earlier of the two clocks decides.
        now = min(clock.now(), log_analytics.service_now(runtime.clients, settings.log_workspace_id))
    except log_analytics.QueryFailed as failure:
        windows, _ = due_windows(runtime, clock.now())
        return _failed(runtime, failures, windows[0], str(failure)) if windows else []
    windows, etag = due_windows(runtime, now)
    if not windows:
        return failures.worked(SCAN)
    written, window = [], windows[0]
    run = ScanRun(failures)
    try:
        baseline = _baseline(runtime, windows[0][0])
        watch = _watch(runtime, run, written, now)
        for window in windows:
            start, end = window
            rows = log_analytics.checked(log_analytics.run(
                runtime.clients, settings.log_workspace_id, "egress_window", start - MAX_ARRIVAL_DELAY, end,
                window_start=start, window_end=end), "egress_window", WINDOW_COLUMNS)
            copies = log_analytics.checked(log_analytics.run(
                runtime.clients, settings.log_workspace_id, "egress_copy", start - MAX_ARRIVAL_DELAY, end,
                window_start=start, window_end=end), "egress_copy", COPY_COLUMNS)
            canary_reads = log_analytics.checked(log_analytics.run(
                runtime.clients, settings.log_workspace_id, "egress_canary", start - MAX_ARRIVAL_DELAY, end,
                window_start=start, window_end=end, canaries=settings.canary_blobs),
                "egress_canary", CANARY_COLUMNS) if settings.canary_blobs else []
            key_uses = log_analytics.checked(log_analytics.run(
                runtime.clients, settings.log_workspace_id, "egress_vault_keys", start - MAX_ARRIVAL_DELAY, end,
                window_start=start, window_end=end, vault_hosts=tuple(sorted(watch.vaults))),
                "egress_vault_keys", VAULT_KEY_COLUMNS) if watch.vaults else []
            copied = _copies_by_source(runtime, copies, run, written)
            written += _judge_window(runtime, start, end, rows, canary_reads, copied, baseline, run)
            written += _judge_vaults(runtime, start, end, key_uses, watch, run)
            etag = runtime.ledger.advance(CHECKPOINT, clock.iso(end), etag)
            if etag is None:
                log.warning("egress scan: another instance moved the checkpoint; stopping at %s", clock.iso(end))
                break
    except log_analytics.QueryFailed as failure:
        return written + _failed(runtime, failures, window, str(failure))
    return written + failures.worked(SCAN)


def due_windows(runtime: Runtime, now: datetime) -> tuple[list[tuple[datetime, datetime]], str | None]:
    """The windows to scan at `now`: from the checkpoint to an ingestion lag ago, at most N."""
    settings = runtime.settings
    window = timedelta(minutes=settings.egress_window_minutes)
    newest_end = _floor(now - timedelta(minutes=settings.egress_lag_minutes), window)
    position, etag = runtime.ledger.checkpoint(CHECKPOINT)
    start = datetime.fromisoformat(position.replace("Z", "+00:00")) if position else newest_end - window
    windows = []
    while start + window <= newest_end and len(windows) < settings.egress_max_windows:
        windows.append((start, start + window))
        start += window
    return windows, etag


def _floor(moment: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return epoch + ((moment - epoch) // step) * step


def _baseline(runtime: Runtime, first_start: datetime) -> dict[tuple[str, str], dict]:
    settings = runtime.settings
    end = _floor(first_start, BASELINE_REFRESH)
    if runtime.egress_baseline is not None and runtime.egress_baseline[0] == end:
        return runtime.egress_baseline[1]
    window = timedelta(minutes=settings.egress_window_minutes)
    lookback = timedelta(days=settings.egress_baseline_days)
    rows = log_analytics.run(runtime.clients, settings.log_workspace_id, "egress_baseline", end - lookback,
                           end, lookback_start=end - lookback, lookback_end=end,
                           window=window, windows=int(lookback / window))
    rows = log_analytics.checked(rows, "egress_baseline", BASELINE_COLUMNS)
    baseline = {(row["ResourceId"], row["Caller"]): row for row in rows}
    runtime.egress_baseline = (end, baseline)
    return baseline


@dataclass(frozen=True)
class Watch:
    """What the scan keeps watch over, read once an hour: the protected accounts of the watched
    subscriptions (lower-case ID -> body), and the vaults holding their customer-managed keys
    (vault host -> the accounts keyed there: account ID, key name, the principal of the identity
    it reaches its key with)."""

    accounts: dict[str, dict]
    vaults: dict[str, list[dict]]


def _watch(runtime: Runtime, run: ScanRun, written: list[DecisionRecord], now: datetime) -> Watch:
    """The hour's watch (kept by the instance, as the baseline is), and the first time in the hour
    the arrival of every protected account's logs judged: one egress_arrival query for all of them
    over the baseline's lookback up to `now`, the accounts listed in ARM. A listing ARM does not
    give is a `failed` record (_listed): the accounts it leaves out are not judged, and the next
    run asks again rather than keep an incomplete watch for the hour."""
    settings = runtime.settings
    hour = _floor(now, BASELINE_REFRESH)
    if runtime.egress_watch is not None and runtime.egress_watch[0] == hour:
        return runtime.egress_watch[1]
    listed = _accounts_by_name(runtime, run, written)
    accounts, vaults = {}, {}
    for account in listed.values():
        try:
            account_id = parse_resource_id(str(account.get("id")))
        except MalformedResourceId:
            continue
        if not protection_of(account_id, account.get("tags"), settings).protected:
            continue
        accounts[account_id.key] = account
        key = customer_key_of(account)
        if key is not None:
            identity = encryption_identity(account)
            vaults.setdefault(key.vault_host, []).append(
                {"account": account["id"], "key": key.key_name, "identities": (identity,) if identity else ()})
    lookback = timedelta(days=settings.egress_baseline_days)
    rows = log_analytics.checked(log_analytics.run(
        runtime.clients, settings.log_workspace_id, "egress_arrival", now - lookback, now,
        lookback_start=now - lookback, lookback_end=now), "egress_arrival", ARRIVAL_COLUMNS)
    arrivals = {str(row["ResourceId"]).lower(): row for row in rows}
    watch = Watch(accounts, vaults)
    log.info("egress scan: watching %d protected account(s), %d with logs in the lookback; %d vault(s) holding "
             "their customer-managed keys", len(accounts), len(accounts.keys() & arrivals.keys()), len(vaults))
    for key, account in sorted(accounts.items()):
        scope = f"the arrival of the logs of {key}"  # not the account's windows: each fails and recovers alone
        try:
            record = _judge_arrival(runtime, now, account, arrivals.get(key))
        except Exception as error:  # noqa: BLE001 - on the record as failed; the other accounts go on
            record = _account_failed(runtime, run.failures, now - lookback, now, key, error, scope)
        else:
            written += run.failures.worked(scope)
        if record is not None:
            written.append(record)
    if not any(what != TENANTS for what in run.unlisted):
        runtime.egress_watch = (hour, watch)
    return watch


def _judge_arrival(runtime: Runtime, now: datetime, account: dict, row: dict | None) -> DecisionRecord | None:
    """Whether one protected account's logs arrive (egress_logs_stopped); a finding is recorded once
    per silence (keyed by the account and its last arrival) or, with no row in the lookback, once a day."""
    settings = runtime.settings
    spelled = account["id"]
    last = clock.iso(row["LastArrival"]) if row else None
    arrival = {"id": spelled, "checked_at": clock.iso(now), "rows": row["Rows"] if row else 0,
               "last_row": clock.iso(row["LastRow"]) if row else None, "last_arrival": last,
               "created": (account.get("properties") or {}).get("creationTime")}
    protection = protection_of(parse_resource_id(spelled), account.get("tags"), settings)
    findings = judge(ARRIVAL, arrival, Context(settings, protection))
    if not findings:
        return None
    digest = hashlib.sha256(f"{spelled.lower()}|{last}".encode()).hexdigest()[:20]
    key = f"egress-silent-{digest}" if last else f"egress-nologs-{now:%Y%m%d}-{digest}"
    record = DecisionRecord(key=key, resource_id=spelled, outcome="", mode=settings.mode, reason="",
                            operation=OPERATION, event_time=clock.iso(now), decided_at=clock.iso())
    return conclude(runtime, record, decide(findings, settings), {spelled: account})


def _judge_vaults(runtime: Runtime, start: datetime, end: datetime, uses: list[dict], watch: Watch,
                  run: ScanRun) -> list[DecisionRecord]:
    """The window's key uses on the vaults of the watch, judged per vault (one record per vault
    per window with findings); a vault that cannot be judged or recorded is a `failed` record
    naming it, and the scan goes on."""
    by_vault: dict[str, list[dict]] = {}
    for use in uses:
        by_vault.setdefault(str(use["ResourceId"] or use["VaultHost"]).lower(), []).append(use)
    written = []
    for vault_id, rows in sorted(by_vault.items()):
        try:
            record = _judge_vault(runtime, start, end, vault_id, rows, watch)
        except Exception as error:  # noqa: BLE001 - on the record as failed; the other vaults go on
            record = _account_failed(runtime, run.failures, start, end, vault_id, error)
        else:
            written += run.failures.worked(vault_id)
        if record is not None:
            written.append(record)
    return written


def _judge_vault(runtime: Runtime, start: datetime, end: datetime, vault_id: str, uses: list[dict],
                 watch: Watch) -> DecisionRecord | None:
    settings = runtime.settings
    host = str(uses[0]["VaultHost"])
    keyed = watch.vaults[host]  # the query asked for the watch's vault hosts alone
    # In scope because of the accounts it encrypts: judged as the first of them is protected.
    first = watch.accounts[parse_resource_id(keyed[0]["account"]).key]
    protection = protection_of(parse_resource_id(first["id"]), first.get("tags"), settings)
    window = {"start": clock.iso(start), "end": clock.iso(end)}
    findings = judge(VAULT_KEYS, {"id": vault_id, "vault_host": host, "uses": uses, "keyed": keyed},
                     Context(settings, protection))
    if not findings:
        return None
    spelled, vault = _vault(runtime, vault_id)
    findings = [replace(f, resource_id=spelled, evidence={**f.evidence, **window}) for f in findings]
    record = DecisionRecord(key=window_key(spelled, start), resource_id=spelled, outcome="", mode=settings.mode,
                            reason="", operation=OPERATION, event_time=clock.iso(end), decided_at=clock.iso())
    return conclude(runtime, record, decide(findings, settings), {spelled: vault} if vault else {})


def _vault(runtime: Runtime, logged: str) -> tuple[str, dict | None]:
    """The vault a log row names, as ARM spells its ID, and its body; the logged ID where ARM has
    none (deleted since) or the row names no vault ID."""
    try:
        vault_id = parse_resource_id(logged)
    except MalformedResourceId:
        return logged, None
    if not vault_id.is_type(KEY_VAULT):
        return logged, None
    vault = arm.read_or_none(runtime.clients, vault_id)
    return ((vault or {}).get("id") or logged), vault


@dataclass
class ScanRun:
    """What one run keeps across its windows: its failures, each account read from ARM once,
    and the decisions this run made to act (queued, so not yet in the ledger as contained)
    that later windows' findings belong with."""

    failures: Repeats
    accounts: dict[str, dict | None] = field(default_factory=dict)
    # Every storage account in scope by name (lower case), listed once a run when a copy names one.
    by_name: dict[str, dict] | None = None
    # The tenants of the subscriptions the app sees, listed once a run when a copy read names one.
    tenants: set[str] | None = None
    # What ARM did not list this run (what -> why): asked once a run, the failure recorded once.
    unlisted: dict[str, str] = field(default_factory=dict)
    acted: dict[str, list[DecisionRecord]] = field(default_factory=dict)


def _copies_by_source(runtime: Runtime, copies: list[dict], run: ScanRun,
                      written: list[DecisionRecord]) -> dict[str, list[dict]]:
    """The copy rows by the ARM ID of the account copied from (lower case), each marked with
    whether its destination is a protected account (DestinationProtected) and which of its
    callers' tenants are not the app's (ForeignTenants). A source's own row names it by
    _ResourceId; a destination's row names the source only by its URI's host, which is
    resolved among the accounts in scope. A source not among them is not the app's to judge;
    a destination not among them (another subscription, another tenant) is not protected.
    Where ARM does not list the accounts or tenants a row needs, the window is judged all the
    same: the row is out of scope (Unresolved, fail closed), the listing's failure is a `failed`
    record (one however often it repeats, `written`), and a row its destination logged names a
    source that cannot be told until the listing works."""
    if not copies:
        return {}
    # Names are resolved only where a row names another account: a copy tool's read that
    # names none (a training pipeline's AzCopy) costs no ARM list.
    named = any(row["Side"] == "destination" or row.get("DestinationAccount") for row in copies)
    accounts = _accounts_by_name(runtime, run, written) if named else {}
    if run.tenants is None and TENANTS not in run.unlisted and any(row.get("RequesterTenants") for row in copies):
        run.tenants = _listed(runtime, run, written, TENANTS, lambda: arm.list_tenants(runtime.clients))
    unlisted_accounts = "; ".join(why for what, why in run.unlisted.items() if what != TENANTS)
    by_source: dict[str, list[dict]] = {}
    for row in copies:
        foreign = sorted({str(t).lower() for t in row.get("RequesterTenants") or []
                          if t and run.tenants is not None and str(t).lower() not in run.tenants})
        source = row["ResourceId"] if row["Side"] == "source" else (
            accounts.get(row.get("SourceAccount") or "") or {}).get("id")
        destination = accounts.get(row.get("DestinationAccount") or "")
        protected = destination is not None and protection_of(
            parse_resource_id(destination["id"]), destination.get("tags"), runtime.settings).protected
        if row.get("DestinationAccount"):  # not among the accounts listed: out of scope, and maybe unlisted
            unresolved = unlisted_accounts if destination is None else ""
        else:  # a copy tool's read: its caller's tenant is what says where the data went
            unresolved = run.unlisted.get(TENANTS, "") if row.get("RequesterTenants") else ""
        if isinstance(source, str) and source:
            by_source.setdefault(source.lower(), []).append({
                **row, "DestinationProtected": protected, "ForeignTenants": foreign,
                **({"Unresolved": unresolved} if unresolved else {})})
    return by_source


TENANTS = "the tenants of the subscriptions the app sees"


def _accounts_by_name(runtime: Runtime, run: ScanRun, written: list[DecisionRecord]) -> dict[str, dict]:
    """Every storage account in CONTAINMENT_SUBSCRIPTIONS (none set: every subscription the
    identity sees) by its name, lower case: names are unique across Azure
    (https://learn.microsoft.com/azure/storage/common/storage-account-overview#storage-account-name),
    so a URI's host names one account. Listed at most once a run: for the hour's watch, or when a
    copy names another account; a subscription ARM does not list leaves its accounts out (_listed)."""
    if run.by_name is None:
        run.by_name = {}
        subscriptions = runtime.settings.subscriptions or _listed(
            runtime, run, written, "the subscriptions the app sees", lambda: arm.list_subscriptions(runtime.clients))
        for subscription in sorted(subscriptions or ()):
            listed = _listed(runtime, run, written, f"the storage accounts of subscription {subscription}",
                             lambda subscription=subscription: arm.list_accounts(runtime.clients, subscription, None))
            run.by_name.update({str(account.get("name")).lower(): account for account in listed or ()})
    return run.by_name


def _listed(runtime: Runtime, run: ScanRun, written: list[DecisionRecord], what: str, listing):
    """ARM's list of `what`, or None where it fails: then a `failed` record saying so (through
    Repeats: one record however often it repeats, closed by the next run that lists it)."""
    try:
        answer = listing()
    except Exception as error:  # noqa: BLE001 - on the record; the window is judged without it
        why = describe_failure(error)
        run.unlisted[what] = f"{what} could not be listed in ARM ({why})"
        log.error("EGRESS SCAN: %s could not be listed in ARM: %s", what, why)
        record = DecisionRecord(key="", resource_id="", outcome="", mode=runtime.settings.mode, reason="",
                                operation=OPERATION, decided_at=clock.iso())
        failure = run.failures.failed(what, recorded(record, failed(
            f"egress scan: {what} could not be listed in ARM ({why}); the windows are judged all the same: a copy "
            "whose destination or caller's tenant this leaves unknown is out of scope (fail closed), a copy "
            "logged only by its destination names a source that cannot be told, and the accounts it leaves out "
            "are not watched (whether their logs arrive, who uses their customer-managed keys) until the list "
            "works")), why)
        if failure is not None:
            written.append(failure)
        return None
    written += run.failures.worked(what)
    return answer


def _judge_window(runtime: Runtime, start: datetime, end: datetime, rows: list[dict], canary_reads: list[dict],
                  copies: dict[str, list[dict]], baseline: dict, run: ScanRun) -> list[DecisionRecord]:
    by_account: dict[str, tuple[list[dict], list[dict], list[dict]]] = {}
    for row in rows:
        by_account.setdefault(row["ResourceId"], ([], [], []))[0].append(row)
    for row in canary_reads:  # a canary read by an operation other than GetBlob names an account of its own
        by_account.setdefault(row["ResourceId"], ([], [], []))[1].append(row)
    for source, rows_of_source in copies.items():  # a copy logged only by its destination names its source
        by_account.setdefault(source, ([], [], []))[2].extend(rows_of_source)
    written = []
    for resource_id, (callers, canaries, copied) in sorted(by_account.items(), key=lambda item: str(item[0])):
        try:
            record = _judge_account(runtime, start, end, resource_id, callers, canaries, copied, baseline, run)
        except Exception as error:  # noqa: BLE001 - on the record as failed; the other accounts go on
            record = _account_failed(runtime, run.failures, start, end, str(resource_id), error)
        else:
            written += run.failures.worked(str(resource_id))
        if record is not None:
            written.append(record)
    return written


def _judge_account(runtime: Runtime, start: datetime, end: datetime, resource_id: str, callers: list[dict],
                   canary_reads: list[dict], copies: list[dict], baseline: dict,
                   run: ScanRun) -> DecisionRecord | None:
    """Judge one account's window; only protected accounts with findings are recorded
    (a record per account per window for quiet accounts would bury the ledger)."""
    try:
        account_id = parse_resource_id(resource_id)
    except MalformedResourceId:
        log.warning("egress scan: a log row names %r, not a storage account ID", resource_id)
        return None
    settings = runtime.settings
    if not account_id.is_type(STORAGE_ACCOUNT) or (
            settings.subscriptions and account_id.subscription not in settings.subscriptions):
        return None  # logs can come from anywhere a diagnostic setting points: stay in scope
    accounts = run.accounts
    if account_id.key not in accounts:
        accounts[account_id.key] = arm.read_or_none(runtime.clients, account_id)
    account = accounts[account_id.key]
    if account is None:
        return None
    protection = protection_of(account_id, account.get("tags"), runtime.settings)
    if not protection.protected:
        return None
    spelled = account.get("id") or account_id.text
    activity = {"id": spelled, "window": {"start": clock.iso(start), "end": clock.iso(end)}, "callers": callers,
                "canary_reads": canary_reads, "copies": copies}
    findings = judge(TABLE, activity, Context(runtime.settings, protection, facts={"baseline": baseline}))
    if not findings:
        return None
    record = DecisionRecord(
        key=window_key(spelled, start), resource_id=spelled, outcome="", mode=runtime.settings.mode, reason="",
        operation=OPERATION, event_time=clock.iso(end), decided_at=clock.iso(),
    )
    findings = [replace(f, evidence={**f.evidence, **activity["window"]}) for f in findings]
    earlier = acted_in_incident(runtime, spelled) + run.acted.get(spelled.lower(), [])
    decision = within_incident(decide(findings, settings), earlier)
    written = conclude(runtime, record, decision, {spelled: account})
    if decision.plan or decision.awaiting:
        run.acted.setdefault(spelled.lower(), []).append(recorded(record, decision))
    # Only a containment carried out can fail to hold: one still waiting for a person (a key
    # listing's rotation, say) has changed nothing yet.
    contained = next((r for r in earlier if r.contained_at), None)
    if contained is not None:
        _check_holding(runtime, contained, spelled, _readers(findings, callers), start, end)
    return written


def _readers(findings: list, callers: list[dict]) -> list[dict]:
    """The callers a rule fired on: the training network's own reads, which a network lock
    keeps working by design, say nothing about whether the containment holds."""
    named = {caller.get("Caller") for finding in findings
             for caller in (finding.detail or finding.evidence).get("callers", [])}
    return [caller for caller in callers if caller.get("Caller") in named]


def _check_holding(runtime: Runtime, contained: DecisionRecord, account_id: str, callers: list[dict],
                   start: datetime, end: datetime) -> None:
    """Say once, at the highest severity, when reads go on after the account was contained
    (rows generated after it, not late rows from before it)."""
    since = _moment(contained.contained_at)
    after = [c for c in callers if since is not None and (_moment(c.get("LastRead")) or since) > since]
    if not after or not runtime.settings.enforcing:
        return
    finding = Finding("egress_containment_not_holding", "critical", account_id,
                      f"{len(after)} caller(s) read blobs after {clock.iso(since)}",
                      {"callers": [{"Caller": c.get("Caller"), "Requests": c.get("Requests"), "Bytes": c.get("Bytes"),
                                    "LastRead": clock.iso(_moment(c.get("LastRead")))} for c in after[:10]],
                       "start": clock.iso(start), "end": clock.iso(end)})
    record = DecisionRecord(key=f"{contained.key}.not-holding", resource_id=account_id, outcome="",
                            mode=runtime.settings.mode, reason="", operation=OPERATION, event_time=clock.iso(end),
                            decided_at=clock.iso())
    record_once(runtime, recorded(record, not_holding(contained, finding)))


def _moment(value) -> datetime | None:
    """A row's or record's time (ISO 8601 of any precision, or a datetime), comparable."""
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def window_key(resource_id: str, start: datetime) -> str:
    digest = hashlib.sha256(resource_id.lower().encode()).hexdigest()[:20]
    return f"egress-{start.astimezone(timezone.utc):%Y%m%dT%H%M}-{digest}"


def _account_failed(runtime: Runtime, failures: Repeats, start: datetime, end: datetime, resource_id: str,
                    error: Exception, scope: str | None = None) -> DecisionRecord | None:
    """One account's window that could not be judged or recorded: a `failed` record about
    the account (a containment queued before the failure still writes its own record)."""
    why = describe_failure(error)
    log.error("EGRESS SCAN FAILED for %s in the window from %s: %s", resource_id, clock.iso(start), why)
    record = DecisionRecord(
        key="", resource_id=resource_id, outcome="", mode=runtime.settings.mode, reason="", operation=OPERATION,
        event_time=clock.iso(end), decided_at=clock.iso(),
    )
    return failures.failed(scope or resource_id, recorded(record, failed(
        f"egress scan of {resource_id} from {clock.iso(start)} to {clock.iso(end)}: its findings could not be "
        f"judged or recorded ({why}); the scan went on with the other accounts")), why)


def _failed(runtime: Runtime, failures: Repeats, window: tuple[datetime, datetime],
            reason: str) -> list[DecisionRecord]:
    start, end = window
    log.error("EGRESS SCAN FAILED for the window from %s: %s", clock.iso(start), reason)
    record = DecisionRecord(key="", resource_id="", outcome="", mode=runtime.settings.mode, reason="",
                            operation=OPERATION, event_time=clock.iso(end), decided_at=clock.iso())
    written = failures.failed(SCAN, recorded(record, failed(
        f"egress scan of {clock.iso(start)} to {clock.iso(end)}: {reason}; the checkpoint stays, the next scan "
        "retries this window")), reason)
    return [written] if written else []
