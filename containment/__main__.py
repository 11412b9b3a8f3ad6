"""The command line.

    python -m containment replay SCENARIO.json [...] [--report DIR]     (development tools)
    python -m containment export decisions|incidents [--since ISO] [--until ISO] [--format jsonl|csv]
    python -m containment incident-report INCIDENT_ID --out report.html
    python -m containment exemptions list
    python -m containment verify [--from YYYY-MM-DD] [--to YYYY-MM-DD]

`replay` runs the app against the local Azure emulator, which is never deployed: it is
found through the `containment.commands` entry point that the development package
declares (pyproject.toml; `make setup` installs it), never imported from here.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

COMMANDS = "containment.commands"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m containment")
    commands = parser.add_subparsers(dest="command", required=True)
    replay_command = commands.add_parser("replay", help="run scenarios against the local emulator and Azurite "
                                                        "(development tools)")
    replay_command.add_argument("scenarios", nargs="+", type=Path)
    replay_command.add_argument("--report", type=Path, default=None,
                                help="write a Markdown evidence report per scenario into this folder")
    export = commands.add_parser("export", help="decisions or incidents for a time range, from the ledger "
                                 "(AzureWebJobsStorage and CONTAINMENT_* settings from the environment)")
    export.add_argument("what", choices=["decisions", "incidents"])
    export.add_argument("--since", type=_instant, default=None, help="ISO 8601, UTC (default: 7 days ago)")
    export.add_argument("--until", type=_instant, default=None, help="ISO 8601, UTC (default: now)")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    report = commands.add_parser("incident-report", help="one incident as a self-contained HTML page")
    report.add_argument("incident")
    report.add_argument("--out", type=Path, required=True)
    exemptions = commands.add_parser("exemptions", help="list the exemptions in the ledger (they change only "
                                     "through the authenticated HTTP API)")
    exemptions.add_argument("verb", choices=["list"])
    verify = commands.add_parser("verify", help="check the ledger's evidence chains and digests for the days from "
                                 "--from to --to: exits 1 naming the first record that does not match")
    verify.add_argument("--from", dest="first", type=_day, default=None,
                        help="YYYY-MM-DD, UTC (default: six days before --to)")
    verify.add_argument("--to", dest="last", type=_day, default=None, help="YYYY-MM-DD, UTC, included (default: today)")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    if args.command == "replay":
        return _development_command("replay")(args.scenarios, report_dir=args.report)
    from containment.operate.cli import exemptions_command, export_command, incident_report_command, verify_command

    if args.command == "verify":
        return verify_command(args.first, args.last)
    if args.command == "export":
        return export_command(args.what, args.since, args.until, args.format)
    if args.command == "incident-report":
        return incident_report_command(args.incident, args.out)
    return exemptions_command()


def _development_command(name: str):
    from importlib.metadata import entry_points

    found = [point for point in entry_points(group=COMMANDS) if point.name == name]
    if not found:
        print(f"'{name}' is a development command and the development tools are not installed here: run "
              "'make setup' (it installs them into .venv with 'pip install -e .')", file=sys.stderr)
        sys.exit(2)
    return found[0].load()


def _instant(text: str):
    from datetime import datetime, timezone

    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _day(text: str):
    from datetime import datetime, timezone

    return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)


if __name__ == "__main__":
    sys.exit(main())
