"""The Function App (Python v2 programming model). Thin on purpose: each function says what
triggers it and why, and hands over to the `containment` package.

Azure SDKs are imported by the package on first use, never here: importing this module is
the cold start of every instance.
"""
import azure.functions as func

# Operator endpoints need a function key and, before that, the person Microsoft Entra ID
# authenticated (App Service Authentication, infra/): containment.operate.principal.
app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.function_name("storage_exposure")
@app.event_grid_trigger(arg_name="event")
def storage_exposure(event: func.EventGridEvent) -> None:
    """ARM wrote a storage account or blob container (subscription system topic,
    ResourceWriteSuccess): re-read it, judge it, record the decision, request containment."""
    from containment.detect.storage import on_storage_write

    on_storage_write(event)


@app.function_name("role_assignment_grant")
@app.event_grid_trigger(arg_name="event")
def role_assignment_grant(event: func.EventGridEvent) -> None:
    """A role assignment was written (subscription system topic, ResourceWriteSuccess):
    re-read it and its role, and contain it if it opens protected data to someone not allowed."""
    from containment.detect.role_assignments import on_role_assignment_write

    on_role_assignment_write(event)


@app.function_name("nsg_exposure")
@app.event_grid_trigger(arg_name="event")
def nsg_exposure(event: func.EventGridEvent) -> None:
    """A network security group or one of its rules was written (subscription system topic,
    ResourceWriteSuccess): re-read the NSG and contain any rule that opens synthetic data."""
    from containment.detect.nsg import on_nsg_write

    on_nsg_write(event)


@app.function_name("storage_key_access")
@app.event_grid_trigger(arg_name="event")
def storage_key_access(event: func.EventGridEvent) -> None:
    """Someone listed a storage account's keys or had ARM sign a SAS with them (subscription
    system topic, ResourceActionSuccess for listKeys, ListAccountSas, ListServiceSas): if
    the account holds synthetic data and the caller is not allowed, record who, from where
    and when, and hold the rotation of the keys for a person."""
    from containment.detect.key_access import on_key_access

    on_key_access(event)


@app.function_name("key_vault_write")
@app.event_grid_trigger(arg_name="event")
def key_vault_write(event: func.EventGridEvent) -> None:
    """A Key Vault, its access policies or a private endpoint connection were written
    (subscription system topic, ResourceWriteSuccess): if the vault holds a protected account's
    customer-managed key (or is itself synthetic data's), re-read it, judge it, and contain an
    open network, an access policy for a principal not allowed, or purge protection off."""
    from containment.detect.key_vault import on_key_vault_write

    on_key_vault_write(event)


@app.function_name("egress_scan")
@app.timer_trigger(schedule="%CONTAINMENT_EGRESS_SCHEDULE%", arg_name="timer", use_monitor=True)
def egress_scan(timer: func.TimerRequest) -> None:
    """Every few minutes: query StorageBlobLogs for the windows that are due (anonymous
    reads, keys or SAS from untrusted networks, volume against each caller's baseline, bulk
    enumeration) and contain what the findings' severities call for."""
    from containment.detect.egress_scan import run_egress_scan

    run_egress_scan()


@app.function_name("drift_sweep")
@app.timer_trigger(schedule="%CONTAINMENT_SWEEP_SCHEDULE%", arg_name="timer", use_monitor=True)
def drift_sweep(timer: func.TimerRequest) -> None:
    """Hourly: re-judge every protected account, container, Key Vault, NSG and role
    assignment through ARM list calls, so what no event reported is still found."""
    from containment.detect.drift_sweep import run_drift_sweep

    run_drift_sweep()


@app.function_name("notifications")
@app.timer_trigger(schedule="%CONTAINMENT_NOTIFY_SCHEDULE%", arg_name="timer", use_monitor=True)
def notifications(timer: func.TimerRequest) -> None:
    """Hourly: each notified incident's Article 33 notices that fall due (assessment due within
    24 hours, deadline passed unassessed), and one digest of the findings recorded `reported`."""
    from containment.record.notifications import run_hourly

    run_hourly()


@app.function_name("contain")
@app.queue_trigger(arg_name="message", queue_name="%CONTAINMENT_QUEUE%", connection="AzureWebJobsStorage")
def contain(message: func.QueueMessage) -> None:
    """A containment request from detection: carry it out once, verify it, record before
    and after. Isolated from detection so that only this function changes resources."""
    from containment.act.worker import on_containment_request

    on_containment_request(message)


@app.function_name("pending_approvals")
@app.route(route="decisions/pending", methods=["GET"])
def pending_approvals(req: func.HttpRequest) -> func.HttpResponse:
    """What waits for a person's approval, with when each expires."""
    from containment.operate.http_api import respond

    return respond(req, "pending")


@app.function_name("approve")
@app.route(route="decisions/{key}/approve", methods=["POST"])
def approve(req: func.HttpRequest) -> func.HttpResponse:
    """A person approves a held decision: its actions go through the containment queue."""
    from containment.operate.http_api import respond

    return respond(req, "approve")


@app.function_name("deny")
@app.route(route="decisions/{key}/deny", methods=["POST"])
def deny(req: func.HttpRequest) -> func.HttpResponse:
    """A person denies a held decision: recorded, nothing done."""
    from containment.operate.http_api import respond

    return respond(req, "deny")


@app.function_name("break_glass")
@app.route(route="contain", methods=["POST"])
def break_glass(req: func.HttpRequest) -> func.HttpResponse:
    """Contain a resource now: the actions asked for, or everything its type supports."""
    from containment.operate.http_api import respond

    return respond(req, "contain")


@app.function_name("release")
@app.route(route="release", methods=["POST"])
def release(req: func.HttpRequest) -> func.HttpResponse:
    """Undo a containment from its recorded before-state (refused if changed since, unless forced)."""
    from containment.operate.http_api import respond

    return respond(req, "release")


@app.function_name("exemptions")
@app.route(route="exemptions", methods=["GET", "POST", "DELETE"])
def exemptions(req: func.HttpRequest) -> func.HttpResponse:
    """List, add (scope, reason, owner, expiry) or remove (?scope=) exemptions."""
    from containment.operate.http_api import respond

    return respond(req, "exemptions")


@app.function_name("mutes")
@app.route(route="mutes", methods=["GET", "POST", "DELETE"])
def mutes(req: func.HttpRequest) -> func.HttpResponse:
    """List, add (rule, scope, reason, owner, expiry) or remove (?rule=&scope=) mutes of notifications."""
    from containment.operate.http_api import respond

    return respond(req, "mutes")


@app.function_name("incidents")
@app.route(route="incidents", methods=["GET"])
def incidents(req: func.HttpRequest) -> func.HttpResponse:
    """The incidents with a record in a time range (?since=&until=, ISO 8601; default the last 7 days)."""
    from containment.operate.http_api import respond

    return respond(req, "incidents")


@app.function_name("incident")
@app.route(route="incidents/{incident}", methods=["GET"])
def incident(req: func.HttpRequest) -> func.HttpResponse:
    """One incident: what it is, where it stands, its Article 33 clock, what waits for whom."""
    from containment.operate.http_api import respond

    return respond(req, "incident")


@app.function_name("incident_decision")
@app.route(route="incidents/{incident}/{verb}", methods=["POST"])
def incident_decision(req: func.HttpRequest) -> func.HttpResponse:
    """A person assesses (Article 33/34), closes, merges or splits an incident."""
    from containment.operate.http_api import respond

    return respond(req, "incident-decision")
