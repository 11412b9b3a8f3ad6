"""Check the emulator's captured traffic against Microsoft's REST API specs with oav.

The emulator writes one file per call in oav's traffic format (`write_traffic_file`);
`validate_traffic` runs Microsoft's validator (npm `oav`, pinned in package.json) once over
the whole directory, against the spec subset in ../shared/azure-specs (see its README).

oav is driven through `validateTrafficAgainstSpec`, the exported function its
`validate-traffic` command calls, with the options the command passes for `--report ""`,
`--jsonReport` and `--logFilepath` (a temporary one: by default oav writes a log under
~/oav_output on every run). The command line alone is not enough, because:
  * its JSON report names neither the traffic file nor the JSON path of an error;
  * traffic that matches no operation is only printed ("Error: Undefined operation {...}"),
    and the command still exits 0. The README explains why that must fail here: an SDK
    sending another api-version would match nothing, and the check would prove nothing.
The driver returns oav's per-file results and the undefined operations as JSON; the JSON
report supplies the covered operations.

The specs are ../shared/azure-specs and the project's own subsets (localazure/specs, for
what the shared copy lacks: object replication policies), seen by oav as one
`specification/` tree of links, so each subset's relative `$ref`s into common-types resolve.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from localazure.shared import REPO_ROOT, shared_file

OAV_PACKAGE = REPO_ROOT / "node_modules" / "oav"
PROJECT_SPECS = REPO_ROOT / "localazure" / "specs" / "specification"

# The Log Analytics query API carries no api-version (its version is the /v1 in the path),
# but oav matches operations by api-version: traffic files get the spec's info.version.
LOG_ANALYTICS_API_VERSION = "2022-10-27"

# oav's Severity enum (oav/dist/lib/util/severity.d.ts).
_OAV_SEVERITIES = {0: "Critical", 1: "Error", 2: "Warning", 3: "Information", 4: "Verbose"}

# argv: oav package dir, spec dir, traffic dir, JSON report path, log file path.
# Prints {"results": oav's per-file results, "undefined": [validationRequest, ...]}.
_DRIVER = r"""
const [oavDir, specDir, trafficDir, jsonReportPath, logFilepath] = process.argv.slice(1);
const { validateTrafficAgainstSpec } = require(oavDir);
const UNDEFINED = "Error: Undefined operation ";
const undefinedRequests = [];
// oav reports unmatched traffic only through console.log; everything else it prints there
// (e.g. "Exception when loading spec" for the examples/ files it tries as specs) is noise.
console.log = (...args) => {
  const line = args.join(" ");
  if (line.startsWith(UNDEFINED)) {
    undefinedRequests.push(JSON.parse(line.slice(UNDEFINED.length)).validationRequest);
  }
};
validateTrafficAgainstSpec(specDir, trafficDir, {
  reportPath: "", jsonReportPath, logFilepath, consoleLogLevel: "off",
}).then(
  (results) => {
    process.stdout.write(JSON.stringify({ results, undefined: undefinedRequests }));
    process.exit(0);
  },
  (error) => {
    process.stderr.write(String(error && error.stack || error));
    process.exit(2);
  },
);
"""


class OavUnavailable(RuntimeError):
    """node or the oav package is missing: the conformance check cannot run."""


class OavFailed(RuntimeError):
    """oav itself crashed (not a finding about the traffic)."""


@dataclass(frozen=True)
class Finding:
    file: str  # traffic file, relative to the traffic directory
    operation_id: str | None
    code: str  # oav's error code, e.g. INVALID_TYPE, OBJECT_ADDITIONAL_PROPERTIES
    message: str
    path: str | None  # JSON path in the request or response body, e.g. $.properties.x
    severity: str
    source: str | None = None  # "request" or "response"

    def __str__(self) -> str:
        where = f" {self.source}" if self.source else ""
        where += f" {self.path}" if self.path else ""
        return f"{self.file} [{self.operation_id}]{where}: {self.code} {self.message}"


@dataclass
class ConformanceReport:
    findings: list[Finding] = field(default_factory=list)
    operations_covered: set[str] = field(default_factory=set)
    files_checked: int = 0
    undefined: list[str] = field(default_factory=list)  # files oav matched to no operation

    @property
    def ok(self) -> bool:
        return not self.findings and not self.undefined and bool(self.operations_covered)

    def __str__(self) -> str:
        lines = [
            f"{self.files_checked} traffic files, {len(self.operations_covered)} operations "
            f"covered: {', '.join(sorted(self.operations_covered)) or 'none'}"
        ]
        lines += [f"  {finding}" for finding in self.findings]
        lines += [
            f"  {name}: no operation in the specs matches this method, path and api-version"
            for name in self.undefined
        ]
        return "\n".join(lines)


# The spec subsets the project keeps itself (localazure/specs/README.md), laid over the shared ones.
PROJECT_SPECS = Path(__file__).with_name("specs") / "specification"


def validate_traffic(traffic_dir: Path, spec_dir: Path | None = None) -> ConformanceReport:
    """Run oav once over every *.json traffic file under traffic_dir, against `spec_dir`
    (default: the shared specs with the project's own subsets laid over them)."""
    traffic_dir = Path(traffic_dir).resolve()
    if not traffic_dir.is_dir():
        raise FileNotFoundError(f"no traffic directory at {traffic_dir}")
    roots = [Path(spec_dir)] if spec_dir else [shared_file("azure-specs", "specification"), PROJECT_SPECS]
    for root in roots:
        if not root.exists():
            raise FileNotFoundError(f"no spec file or directory at {root}")
    node = shutil.which("node")
    if node is None:
        raise OavUnavailable("node is not on PATH: install Node.js, then run `npm ci`")
    if not (OAV_PACKAGE / "package.json").is_file():
        raise OavUnavailable(f"oav is not installed at {OAV_PACKAGE}: run `npm ci` in {REPO_ROOT}")
    traffic_files = sorted(traffic_dir.rglob("*.json"))

    with tempfile.TemporaryDirectory(prefix="oav-") as work:
        json_report = Path(work) / "report.json"
        specs = roots[0] if len(roots) == 1 else spec_tree(roots, Path(work) / "specification")
        completed = subprocess.run(
            [node, "-e", _DRIVER, str(OAV_PACKAGE), str(specs), str(traffic_dir),
             str(json_report), str(Path(work) / "oav.log")],
            capture_output=True, text=True, timeout=300,
        )
        if completed.returncode != 0 or not json_report.is_file():
            raise OavFailed(f"oav exited with {completed.returncode}: {completed.stderr.strip()}")
        output = json.loads(completed.stdout)
        report = json.loads(json_report.read_text())

    findings = [
        finding for result in output["results"] for finding in _findings(result, traffic_dir)
    ]
    failed_operations = {f.operation_id for f in findings if f.operation_id}
    passed_operations = {
        operation_id
        for spec in report["passedOperationsList"]
        for operation_id in spec["operationIds"]
    }
    return ConformanceReport(
        findings=findings,
        operations_covered=passed_operations | failed_operations,
        files_checked=len(traffic_files),
        undefined=_undefined_files(output["undefined"], traffic_files, traffic_dir),
    )


def spec_tree(roots: list[Path], into: Path) -> Path:
    """One tree of links to every file under the roots, at its path below `specification/`
    (the roots hold different files: a path found twice is an error, not a silent choice)."""
    for root in roots:
        for source in sorted(p for p in root.rglob("*") if p.is_file()):
            link = into / source.relative_to(root)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(source.resolve())  # FileExistsError where two roots hold one path
    return into


def _findings(result: dict, traffic_dir: Path) -> list[Finding]:
    """One oav result (one traffic file) as findings: each error, each runtime exception."""
    file = _relative(result.get("payloadFilePath", ""), traffic_dir)
    operation_id = (result.get("operationInfo") or {}).get("operationId")
    findings = [
        Finding(
            file=file,
            operation_id=operation_id,
            code=error["code"],
            message=error["message"],
            path=", ".join(error.get("jsonPathsInPayload") or []) or None,
            severity=_OAV_SEVERITIES.get(error.get("severity"), str(error.get("severity"))),
            source=error.get("issueSource"),
        )
        for error in result.get("errors") or []
    ]
    # A runtime exception (unreadable file, unresolvable spec) means the file was not
    # validated; it must not pass as clean. oav stops at an unreadable file, so the files
    # after it go unchecked too: the finding names the file to fix.
    findings += [
        Finding(
            file=file,
            operation_id=operation_id,
            code=exception.get("code", "RUNTIME_ERROR"),
            message=exception.get("message", ""),
            path=None,
            severity="Error",
        )
        for exception in result.get("runtimeExceptions") or []
    ]
    return findings


def _undefined_files(
    requests: list[dict], traffic_files: list[Path], traffic_dir: Path
) -> list[str]:
    """Map oav's unmatched requests back to their files by method and URL."""
    by_request: dict[tuple[str, str], list[str]] = {}
    for path in traffic_files:
        try:
            live_request = json.loads(path.read_text())["liveRequest"]
            key = (live_request["method"].lower(), live_request["url"])
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # oav reports an unreadable file as a runtime exception
        by_request.setdefault(key, []).append(_relative(str(path), traffic_dir))
    undefined = []
    for request in requests:
        method, url = request.get("requestMethod", ""), request.get("requestUrl", "")
        files = by_request.get((method, url))
        undefined.append(files.pop(0) if files else f"{method.upper()} {url}")
    return undefined


def _relative(path: str, traffic_dir: Path) -> str:
    try:
        return Path(path).resolve().relative_to(traffic_dir).as_posix()
    except ValueError:
        return path


def write_traffic_file(
    directory: Path,
    method: str,
    url: str,
    request_headers: dict[str, str],
    request_body: object,
    status: int | str,
    response_headers: dict[str, str],
    response_body: object,
) -> Path:
    """Write one call as an oav traffic file and return its path.

    Bodies are JSON values (None for no body). oav wants statusCode as a string, a
    Content-Type on every JSON body (else INVALID_CONTENT_TYPE) and an api-version on every
    URL: Log Analytics URLs (/v1/...) get LOG_ANALYTICS_API_VERSION.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    traffic = {
        "liveRequest": {
            "method": method.upper(),
            "url": _with_api_version(url),
            "headers": _with_content_type(request_headers, request_body),
            "body": request_body,
        },
        "liveResponse": {
            "statusCode": str(status),
            "headers": _with_content_type(response_headers, response_body),
            "body": response_body,
        },
    }
    segment = re.sub(r"[^A-Za-z0-9_.-]", "_", urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    # Calls may be captured from several threads: claim the next free number atomically.
    index = len(list(directory.glob("*.json")))
    while True:
        path = directory / f"{index:05d}_{method.lower()}_{segment or 'root'}.json"
        try:
            with path.open("x") as handle:
                json.dump(traffic, handle, indent=2)
            return path
        except FileExistsError:
            index += 1


def _with_content_type(headers: dict[str, str], body: object) -> dict[str, str]:
    headers = dict(headers or {})
    if body is not None and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/json"
    return headers


def _with_api_version(url: str) -> str:
    parts = urlsplit(url)
    if parts.path.startswith("/v1/") and "api-version=" not in parts.query:
        separator = "&" if parts.query else "?"
        return f"{url}{separator}api-version={LOG_ANALYTICS_API_VERSION}"
    return url
