"""The house rules of containment/, read from the source (every import counts, those inside
functions too):

- one direction of dependency: core <- judge <- plan <- adapters <- record <- detect, act,
  operate <- the package's top modules; no module imports a later layer or a peer layer;
- no import circle between modules;
- judging and planning are pure: no Azure SDK, no I/O module, no open/print;
- only the adapters import service SDKs (azure.functions, the host's binding, is not one);
- only the containment worker writes to customer resources (arm.write), and only the ARM
  adapter calls the SDKs' write operations;
- every recorded outcome is decided in containment/plan/decisions.py;
- nothing under containment/ imports the emulator, the Function App, tests or benchmarks,
  and none of those is deployed (.funcignore).

Each rule is a function over a folder, so a test can show it failing on a planted breach.
"""
from __future__ import annotations

import ast
import fnmatch
import shutil
from pathlib import Path

import pytest

from localazure.shared import REPO_ROOT

PACKAGE = REPO_ROOT / "containment"
LAYERS = {"core": 0, "judge": 1, "plan": 2, "adapters": 3, "record": 4, "detect": 5, "act": 5, "operate": 5}
TOP = 6  # containment/__init__, __main__, deployment
PURE = ("judge", "plan")
IO_MODULES = ("os", "io", "pathlib", "socket", "subprocess", "shutil", "tempfile", "http", "urllib", "requests",
              "sqlite3", "logging")
NOT_A_SERVICE_SDK = ("azure.functions",)
SDK_WRITES = ("begin_create_or_update", "begin_delete", "create_by_id", "delete_by_id", "regenerate_key",
              "revoke_user_delegation_keys")
NEVER_IMPORTED = ("localazure", "function_app", "tests", "bench")


def modules(root: Path) -> dict[str, Path]:
    """containment.x.y -> file, for every module under root (root is the package folder)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(["containment", *parts])] = path
    return found


def imports(path: Path) -> list[tuple[str, int]]:
    """Every module named by an import anywhere in the file (names imported from a module
    count as that module, or as the submodule where one exists), with its line."""
    named = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            named += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            named.append((node.module, node.lineno))
            named += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
    return named


def sources(root: Path):
    """(module, file, its package, the file as a breach names it) for every module."""
    for module, path in modules(root).items():
        yield module, path, layer(module)[0], path.relative_to(root.parent)


def layer(module: str) -> tuple[str, int]:
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS):
        return parts[1], LAYERS[parts[1]]
    return "top", TOP


def graph(root: Path) -> dict[str, set[str]]:
    known = modules(root)
    return {module: {name for name, _ in imports(path) if name in known and name != module}
            for module, path in known.items()}


def circles(root: Path) -> list[list[str]]:
    """Import circles between modules (strongly connected components larger than one)."""
    edges, index, low, stack, on_stack, found = graph(root), {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(edges[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def layering_breaches(root: Path) -> list[str]:
    breaches = []
    known = modules(root)
    for module, path in known.items():
        package, rank = layer(module)
        for name, line in imports(path):
            if name not in known or name.count(".") < 1:
                continue
            other, other_rank = layer(name)
            if other != package and other_rank >= rank:
                breaches.append(f"{path.relative_to(root.parent)}:{line} ({package}) imports {name} ({other})")
    return breaches


def sdk_and_io_breaches(root: Path) -> list[str]:
    breaches = []
    for _, path, package, where in sources(root):
        for name, line in imports(path):
            top = name.split(".")[0]
            service_sdk = top == "azure" and not any(name == n or name.startswith(n + ".") for n in NOT_A_SERVICE_SDK)
            if service_sdk and package != "adapters":
                breaches.append(f"{where}:{line} imports the service SDK {name} outside containment/adapters")
            if package in PURE and (top == "azure" or top in IO_MODULES):
                breaches.append(f"{where}:{line} ({package}, pure) imports {name}")
        if package in PURE:
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("open", "print"):
                    breaches.append(f"{where}:{node.lineno} ({package}, pure) calls {node.func.id}()")
    return breaches


def write_breaches(root: Path) -> list[str]:
    breaches = []
    for module, path, package, where in sources(root):
        for node in ast.walk(ast.parse(path.read_text())):
            if package != "act":
                if isinstance(node, ast.Attribute) and node.attr == "write" and isinstance(node.value, ast.Name) \
                        and node.value.id == "arm":
                    breaches.append(f"{where}:{node.lineno} calls arm.write outside the containment worker")
                if isinstance(node, ast.ImportFrom) and node.module == "containment.adapters.arm" \
                        and any(alias.name == "write" for alias in node.names):
                    breaches.append(f"{where}:{node.lineno} imports arm.write outside the containment worker")
            if module != "containment.adapters.arm" and isinstance(node, ast.Attribute) and node.attr in SDK_WRITES:
                breaches.append(f"{where}:{node.lineno} calls the SDK write {node.attr} outside the ARM adapter")
    return breaches


def outcome_breaches(root: Path) -> list[str]:
    """An outcome is decided where a record gets a non-empty one: only plan/decisions.py may."""
    breaches = []
    for module, path in modules(root).items():
        if module == "containment.plan.decisions":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "outcome" and not (
                    isinstance(node.value, ast.Constant) and node.value.value == ""):
                breaches.append(f"{path.relative_to(root.parent)}:{node.value.lineno} sets an outcome")
            if isinstance(node, (ast.Assign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for part in ast.walk(target):
                        if isinstance(part, ast.Attribute) and part.attr == "outcome":
                            breaches.append(f"{path.relative_to(root.parent)}:{node.lineno} assigns an outcome")
    return breaches


def foreign_imports(root: Path) -> list[str]:
    return [f"{path.relative_to(root.parent)}:{line} imports {name}"
            for path in modules(root).values() for name, line in imports(path)
            if name.split(".")[0] in NEVER_IMPORTED]


@pytest.mark.parametrize("rule", [circles, layering_breaches, sdk_and_io_breaches, write_breaches, outcome_breaches,
                                  foreign_imports])
def test_the_package_keeps_its_house_rules(rule):
    assert rule(PACKAGE) == []


@pytest.fixture
def planted(tmp_path):
    """A copy of the package to plant breaches in."""
    copy = tmp_path / "containment"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def plant(package: Path, relative: str, line: str) -> None:
    path = package / relative
    path.write_text(path.read_text() + "\n" + line + "\n")


def test_a_planted_sdk_import_in_judge_is_caught(planted):
    plant(planted, "judge/storage.py", "from azure.storage.blob import BlobClient")
    line = len((planted / "judge/storage.py").read_text().splitlines())
    assert sdk_and_io_breaches(planted) == [
        f"containment/judge/storage.py:{line} imports the service SDK azure.storage.blob outside containment/adapters",
        f"containment/judge/storage.py:{line} (judge, pure) imports azure.storage.blob",
        f"containment/judge/storage.py:{line} imports the service SDK azure.storage.blob.BlobClient outside "
        "containment/adapters",
        f"containment/judge/storage.py:{line} (judge, pure) imports azure.storage.blob.BlobClient"]


def test_a_planted_import_inside_a_function_closing_a_circle_is_caught(planted):
    plant(planted, "core/ids.py", "def _late():\n    from containment.core.settings import SETTINGS")
    assert circles(planted) == [["containment.core.ids", "containment.core.settings"]]
    plant(planted, "judge/rule.py", "def _later():\n    from containment.detect import pipeline")
    assert any("judge/rule.py" in breach and "containment.detect.pipeline" in breach
               for breach in layering_breaches(planted))


def test_planted_writes_outcomes_and_emulator_imports_are_caught(planted):
    plant(planted, "detect/storage.py", "def _act(clients, change):\n    arm.write(clients, change)")
    plant(planted, "record/conclude.py", "def _decide(record):\n    return replace(record, outcome='contained')")
    plant(planted, "operate/controls.py", "def _replay():\n    import localazure.replay")
    assert [b.split(" ", 1)[1] for b in write_breaches(planted)] == ["calls arm.write outside the containment worker"]
    assert [b.split(" ", 1)[1] for b in outcome_breaches(planted)] == ["sets an outcome"]
    assert [b.split(" ", 1)[1] for b in foreign_imports(planted)] == ["imports localazure.replay"]


# -- what is deployed -------------------------------------------------------------------------------
def deployed_files() -> list[Path]:
    """The files `func azure functionapp publish` and azd would package: everything tracked
    in the repository that .funcignore (gitignore-style patterns) does not exclude."""
    import subprocess

    patterns = [line.strip() for line in (REPO_ROOT / ".funcignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    kept = []
    for name in tracked.stdout.split():
        parts = name.split("/")
        excluded = any(
            (pattern.endswith("/") and pattern.rstrip("/") in parts[:-1])
            or fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(parts[-1], pattern)
            for pattern in patterns)
        if not excluded:
            kept.append(REPO_ROOT / name)
    return kept


def test_the_deployment_holds_the_app_and_no_development_tool():
    deployed = {path.relative_to(REPO_ROOT).as_posix() for path in deployed_files()}
    assert {"function_app.py", "host.json", "requirements.txt", "containment/detect/pipeline.py",
            "containment/adapters/queries/egress_window.kql"} <= deployed
    for tool in ("localazure/", "tests/", "bench/", "scenarios/", "infra/", "pyproject.toml"):
        assert not any(path == tool or path.startswith(tool) for path in deployed), f"{tool} would be deployed"
    for path in deployed_files():
        if path.suffix == ".py":
            assert [name for name, _ in imports(path) if name.split(".")[0] in NEVER_IMPORTED] == [], path
