"""One fresh process for bench/cold_start.py: measure, print one JSON line, exit.

    python bench/_cold_child.py bare|app|sdks     # the import cost of nothing, function_app, the eleven SDKs
    python bench/_cold_child.py invoke < payload  # load the app as the worker does, invoke one function twice
    python bench/_cold_child.py identity < payload  # the managed identity's first tokens, after the app

Only the standard library is loaded before the measurements, and nothing of the app or
the SDKs: whatever this process imports is what it measures. Timestamps are
time.monotonic(), system-wide on Linux, so the parent can put them next to the moment
it started this process.
"""
import time

STARTED = time.monotonic()

import json  # noqa: E402 - the clock starts first
import os  # noqa: E402
import sys  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# The eleven Azure SDKs the app depends on (requirements.txt), as the app imports them.
SDKS = ("azure.functions", "azure.identity", "azure.mgmt.storage", "azure.mgmt.network",
        "azure.mgmt.authorization", "azure.mgmt.resource.subscriptions", "azure.eventgrid", "azure.monitor.query",
        "azure.data.tables", "azure.storage.blob", "azure.storage.queue")


def imports(what: str) -> dict:
    began = time.monotonic()
    if what == "app":
        import function_app  # noqa: F401
    elif what == "sdks":
        import importlib

        for name in SDKS:
            importlib.import_module(name)
    return {"import": time.monotonic() - began}


def invoke(payload: dict) -> dict:
    """Load the app as the Python worker does (import it, index its functions), then hand
    the function its first trigger as the host would, and its second (warm).

    payload: {"function": name, "first": trigger, "second": trigger}, a trigger being
    {"kind": "event", "event": ...}, {"kind": "message", "message": ...}, {"kind": "timer"}
    or {"kind": "http", "method", "route", "body", "headers"}."""
    began = time.monotonic()
    import function_app

    imported = time.monotonic()
    from localazure import functions_host as host

    host_ready = time.monotonic()
    host.index(function_app.app)
    loaded = time.monotonic()
    before_first = set(sys.modules)
    first_answer = _deliver(host, function_app.app, payload["function"], payload["first"])
    first = time.monotonic()
    peak_after_first = _peak()
    imported_by_first = set(sys.modules) - before_first
    second_answer = _deliver(host, function_app.app, payload["function"], payload["second"])
    second = time.monotonic()
    return {"began": began, "loaded": loaded, "host_import": host_ready - imported, "first": first,
            "second": second, "peak_after_first_kib": peak_after_first, "answers": [first_answer, second_answer],
            "modules_by_first": len(imported_by_first), "azure_by_first": _azure_packages(imported_by_first)}


# The scopes a first invocation asks tokens for: ARM's (reads, writes), Storage's (ledger, queue).
ARM_SCOPE = "https://management.azure.com/.default"
STORAGE_SCOPE = "https://storage.azure.com/.default"


def identity(payload: dict) -> dict:
    """What the managed identity adds to a first invocation in Azure: import azure.identity,
    build the credential, fetch ARM's and Storage's first tokens from the managed-identity
    endpoint IDENTITY_ENDPOINT names, then ARM's again (from the credential's cache).

    Measured after what every first invocation has loaded before it asks for a token: the app
    and azure.core's pipeline with its requests transport (each SDK client's).
    payload: {"credential": "default" | "managed"}, DefaultAzureCredential as the app builds
    it (containment/adapters/clients.py), or ManagedIdentityCredential for the identity
    AZURE_CLIENT_ID names."""
    import function_app  # noqa: F401
    import azure.core.pipeline.transport  # noqa: F401

    loaded, peak_loaded = time.monotonic(), _peak()
    import azure.identity

    imported, peak_imported = time.monotonic(), _peak()
    if payload["credential"] == "default":
        credential = azure.identity.DefaultAzureCredential()
    else:
        credential = azure.identity.ManagedIdentityCredential(client_id=os.environ["AZURE_CLIENT_ID"])
    built = time.monotonic()
    credential.get_token(ARM_SCOPE)
    arm = time.monotonic()
    credential.get_token(STORAGE_SCOPE)
    storage = time.monotonic()
    credential.get_token(ARM_SCOPE)
    cached = time.monotonic()
    return {"import": imported - loaded, "build": built - imported, "arm_token": arm - built,
            "storage_token": storage - arm, "cached_token": cached - storage,
            "import_kib": peak_imported - peak_loaded, "tokens_kib": _peak() - peak_imported}


def _deliver(host, app, function: str, trigger: dict):
    """One invocation, the trigger decoded as the host hands it over; the HTTP answer, else None."""
    kind = trigger["kind"]
    if kind == "http":
        response = host.call_http(app, trigger["method"], trigger["route"], trigger["body"], trigger["headers"])
        return {"status": response.status_code, "body": json.loads(response.get_body())}
    if kind == "timer":
        invocation = host.fire_timer(app, function)
        if invocation.error is not None:  # the host would log it and go on; a benchmark stops
            raise invocation.error
        return None
    decoded = _event(trigger["event"]) if kind == "event" else _message(trigger["message"])
    host.user_function(app, function)(decoded)
    return None


def _event(event: dict):
    """The trigger argument, decoded by the worker's own converter (as functions_host does)."""
    import azure.functions as func
    from azure.functions.eventgrid import EventGridEventInConverter

    return EventGridEventInConverter.decode(func.meta.Datum(json.dumps(event), "json"), trigger_metadata={})


def _message(message: dict):
    import azure.functions as func
    from azure.functions.queue import QueueMessageInConverter

    metadata = {"Id": func.meta.Datum(message["id"], "string"),
                "DequeueCount": func.meta.Datum(message["dequeue_count"], "int"),
                "PopReceipt": func.meta.Datum(message["pop_receipt"], "string")}
    return QueueMessageInConverter.decode(func.meta.Datum(message["body"].encode(), "bytes"), trigger_metadata=metadata)


def _azure_packages(modules: set[str]) -> list[str]:
    """The Azure distributions whose top package is among `modules`: azure.core,
    azure.mgmt.storage (azure and azure.mgmt are namespace packages, without a file)."""
    packages = set()
    for name in modules:
        if not name.startswith("azure."):
            continue
        parts = name.split(".")
        for depth in range(2, len(parts) + 1):
            package = ".".join(parts[:depth])
            if getattr(sys.modules.get(package), "__file__", None):
                if package in modules:
                    packages.add(package)
                break
    return sorted(packages)


def _peak() -> int:
    """This process's peak resident set size, KiB.

    Linux's VmHWM, not getrusage's ru_maxrss: a child started by fork/vfork + exec inherits
    its parent's ru_maxrss, so this process would report at least the benchmark's own peak.
    VmHWM belongs to the address space, which exec replaced.
    """
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS


if __name__ == "__main__":
    mode = sys.argv[1]
    payload = json.load(sys.stdin) if mode in ("invoke", "identity") else None  # read before any clock runs
    result = invoke(payload) if mode == "invoke" else identity(payload) if mode == "identity" else imports(mode)
    result.update(started=STARTED, peak_kib=_peak())
    print(json.dumps(result))
