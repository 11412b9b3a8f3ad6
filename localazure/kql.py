"""Type-check the app's KQL against the Log Analytics table schemas, before Azure sees it.

`check_queries` runs kql_check.mjs (Microsoft's Kusto language service, npm
@kusto/language-service-next) once for all queries and returns each query's diagnostics.

Which diagnostics fail a query (`Diagnostic.fails`):
  * Error: syntax errors, unknown names, wrong argument types, and comparisons of values the
    engine cannot compare (KQLCHECK001, added by kql_check.mjs).
  * Warning: also fails. The language service's warnings are its Correctness analyzers, and
    each is a query that runs but answers wrongly: `isnull()` on a string is never true
    (KS501), a `let` parameter shadowed by a column of the same name is silently ignored
    (KS510), a join without a kind silently deduplicates its left side (KS508). A detection
    query that quietly matches nothing is worse than one that fails.
  * Suggestion and Information do not fail (performance advice such as KS500 "avoid
    contains"); they are still returned.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from localazure.shared import REPO_ROOT

CHECKER = Path(__file__).with_name("kql_check.mjs")
LANGUAGE_SERVICE = REPO_ROOT / "node_modules" / "@kusto" / "language-service-next"
CONTAINMENT_DIR = REPO_ROOT / "containment"

FAILING_SEVERITIES = frozenset({"Error", "Warning"})


class KqlCheckUnavailable(RuntimeError):
    """node or the Kusto language service is missing: queries cannot be checked."""


class KqlCheckFailed(RuntimeError):
    """kql_check.mjs refused the request (e.g. an unknown column type) or crashed."""


@dataclass(frozen=True)
class Diagnostic:
    severity: str  # Error, Warning, Suggestion or Information
    code: str  # KSnnn from the language service, KQLCHECK001 from kql_check.mjs
    message: str
    start: int  # offset of the offending text in the query
    length: int
    category: str = ""  # Correctness, Performance, General...

    @property
    def fails(self) -> bool:
        return self.severity in FAILING_SEVERITIES

    def describe(self, text: str) -> str:
        """One line naming the position and the offending text of the query."""
        line = text.count("\n", 0, self.start) + 1
        column = self.start - (text.rfind("\n", 0, self.start) + 1) + 1
        excerpt = text[self.start : self.start + self.length]
        return f"{line}:{column} {self.severity} {self.code} {self.message} [{excerpt}]"


def default_schema() -> dict[str, list[dict]]:
    from localazure.logs import default_schemas

    return {table: [{"name": name, "type": kind} for name, kind in columns]
            for table, columns in default_schemas().items()}


def check_queries(
    queries: dict[str, str], schema: dict[str, list[dict]] | None = None
) -> dict[str, list[Diagnostic]]:
    """Diagnostics of every query (name -> text), against schema (table -> [{name, type}])."""
    if not queries:
        return {}
    node = shutil.which("node")
    if node is None:
        raise KqlCheckUnavailable("node is not on PATH: install Node.js, then run `npm ci`")
    if not (LANGUAGE_SERVICE / "package.json").is_file():
        raise KqlCheckUnavailable(
            f"the Kusto language service is not installed at {LANGUAGE_SERVICE}: "
            f"run `npm ci` in {REPO_ROOT}"
        )
    request = {
        "schema": default_schema() if schema is None else schema,
        "queries": [{"name": name, "text": text} for name, text in queries.items()],
    }
    completed = subprocess.run(
        [node, str(CHECKER)], input=json.dumps(request), capture_output=True, text=True,
        timeout=300,
    )
    if completed.returncode != 0:
        raise KqlCheckFailed(
            completed.stderr.strip() or f"kql_check.mjs exited with {completed.returncode}"
        )
    return {
        result["name"]: [Diagnostic(**diagnostic) for diagnostic in result["diagnostics"]]
        for result in json.loads(completed.stdout)
    }


def shipped_queries(package_dir: Path = CONTAINMENT_DIR) -> dict[str, str]:
    """Every *.kql file under package_dir, by path relative to it."""
    package_dir = Path(package_dir)
    return {
        path.relative_to(package_dir).as_posix(): path.read_text()
        for path in sorted(package_dir.rglob("*.kql"))
    }
