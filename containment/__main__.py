"""The command line.

    python -m containment replay SCENARIO.json [...] [--report DIR] [--demo-ledger]     (development tools)
    python -m containment export decisions|incidents [--since ISO] [--until ISO] [--format jsonl|csv]
    python -m containment incident-report INCIDENT_ID --out report.html
    python -m containment exemptions list
    python -m containment verify [--from YYYY-MM-DD] [--to YYYY-MM-DD]
    python -m containment canaries [--since ISO] [--until ISO]

`replay` runs the app against the local Azure emulator, which is never deployed: it is
found through the `containment.commands` entry point that the development package
declares (pyproject.toml; `make setup` installs it), never imported from here. So is the
demo ledger (`replay --demo-ledger`, `make demo`), which the other commands read where no
storage setting names a ledger: one ledger per scenario, `--scenario` picks one.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

COMMANDS = "containment.commands"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m containment")
    commands = parser.add_subparsers(dest="command", required=True)
    replay_command = commands.add_parser("replay", help="run scenarios against the local emulator and Azurite "
                                                        "(development tools)")
    replay_command.add_argument("scenarios", nargs="+", type=Path)
    replay_command.add_argument("--report", type=Path, default=None,
                                help="write a Markdown evidence report per scenario, and an HTML report per "
                                     "incident under incidents/, into this folder")
    replay_command.add_argument("--demo-ledger", action="store_true",
                                help="keep every scenario's ledger in .demo/ (replacing an earlier one), where the "
                                     "commands below read it when no storage is set")
    # The commands that read the ledger: the storage settings name it, or else the demo ledger.
    ledger = argparse.ArgumentParser(add_help=False)
    ledger.add_argument("--scenario", default=None,
                        help="demo ledger only: the ledger of this scenario (its file name without .json)")
    export = commands.add_parser("export", parents=[ledger],
                                 help="decisions or incidents for a time range, from the ledger "
                                 "(AzureWebJobsStorage and CONTAINMENT_* settings from the environment)")
    export.add_argument("what", choices=["decisions", "incidents"])
    export.add_argument("--since", type=_instant, default=None, help="ISO 8601, UTC (default: 7 days ago)")
    export.add_argument("--until", type=_instant, default=None, help="ISO 8601, UTC (default: now)")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    report = commands.add_parser("incident-report", parents=[ledger], help="one incident as a self-contained HTML page")
    report.add_argument("incident")
    report.add_argument("--out", type=Path, required=True)
    exemptions = commands.add_parser("exemptions", parents=[ledger], help="list the exemptions in the ledger (they "
                                     "change only through the authenticated HTTP API)")
    exemptions.add_argument("verb", choices=["list"])
    verify = commands.add_parser("verify", parents=[ledger], help="check the ledger's evidence chains and digests for "
                                 "the days from --from to --to: exits 1 naming the first record that does not match")
    verify.add_argument("--from", dest="first", type=_day, default=None,
                        help="YYYY-MM-DD, UTC (default: six days before --to)")
    verify.add_argument("--to", dest="last", type=_day, default=None, help="YYYY-MM-DD, UTC, included (default: today)")
    canaries = commands.add_parser("canaries", parents=[ledger], help="each canary blob of CONTAINMENT_CANARY_BLOBS "
                                   "and whether and when it was last read, per the ledger's canary findings")
    canaries.add_argument("--since", type=_instant, default=None, help="ISO 8601, UTC (default: 90 days before --until)")
    canaries.add_argument("--until", type=_instant, default=None, help="ISO 8601, UTC (default: now)")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    if args.command == "replay":
        return _development_command("replay")(args.scenarios, report_dir=args.report, demo_ledger=args.demo_ledger)
    with _demo_ledger() as demo:
        if demo is None:
            if args.scenario:
                print("--scenario names a ledger of the demo ledger, and none is read here: a storage setting "
                      "names the ledger, or there is no .demo/ (make demo)", file=sys.stderr)
                return 2
            return _ledger_command(args, None)
        return _demo_command(args, demo)


def _demo_command(args, demo) -> int:
    """A ledger command on the demo ledger: every scenario's ledger, or the one --scenario names."""
    from containment.adapters.runtime import Runtime
    from containment.core.settings import load_settings
    from containment.plan.registry import VOCABULARY

    names = ", ".join(demo.scenarios)
    if args.scenario and args.scenario not in demo.scenarios:
        print(f"no scenario {args.scenario} in the demo ledger, which keeps one ledger per scenario: {names}",
              file=sys.stderr)
        return 2
    if args.command in ("verify", "exemptions") and not args.scenario and len(demo.scenarios) > 1:
        print(f"the demo ledger keeps one ledger per scenario: name one with --scenario ({names})", file=sys.stderr)
        return 2
    ledgers = {name: Runtime(load_settings({**os.environ, **settings}, VOCABULARY))
               for name, settings in demo.scenarios.items() if args.scenario in (None, name)}
    # Without a range, the days the demo's decisions fall on: its clocks are the scenarios'.
    for name, default in (("since", demo.since), ("until", demo.until), ("first", demo.since),
                          ("last", demo.until - timedelta(days=1))):
        if getattr(args, name, False) is None:
            setattr(args, name, default)
    return _ledger_command(args, ledgers)


def _ledger_command(args, ledgers) -> int:
    from containment.operate.cli import (canaries_command, exemptions_command, export_command, incident_report_command,
                                         verify_command)

    if args.command == "verify":
        return verify_command(args.first, args.last, ledgers)
    if args.command == "export":
        return export_command(args.what, args.since, args.until, args.format, ledgers)
    if args.command == "canaries":
        return canaries_command(args.since, args.until, ledgers)
    if args.command == "incident-report":
        return incident_report_command(args.incident, args.out, ledgers)
    return exemptions_command(ledgers)


@contextmanager
def _demo_ledger():
    """The demo ledger that `make demo` left in .demo/, served while the command runs; None
    where a storage setting names the ledger, or the development tools are not installed."""
    configured = any(name == "AzureWebJobsStorage" or name.startswith("AzureWebJobsStorage__") for name in os.environ)
    tool = None if configured else _development_tool("demo-ledger")
    if tool is None:
        yield None
        return
    with tool(os.environ) as demo:
        yield demo


def _development_tool(name: str):
    from importlib.metadata import entry_points

    found = [point for point in entry_points(group=COMMANDS) if point.name == name]
    return found[0].load() if found else None


def _development_command(name: str):
    command = _development_tool(name)
    if command is None:
        print(f"'{name}' is a development command and the development tools are not installed here: run "
              "'make setup' (it installs them into .venv with 'pip install -e .')", file=sys.stderr)
        sys.exit(2)
    return command


def _instant(text: str):
    from datetime import datetime, timezone

    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _day(text: str):
    from datetime import datetime, timezone

    return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)


if __name__ == "__main__":
    sys.exit(main())
