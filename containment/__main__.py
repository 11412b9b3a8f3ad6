"""python -m containment replay SCENARIO.json [SCENARIO.json ...] [--report DIR]"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m containment")
    commands = parser.add_subparsers(dest="command", required=True)
    replay_command = commands.add_parser("replay", help="run scenarios against the local emulator and Azurite")
    replay_command.add_argument("scenarios", nargs="+", type=Path)
    replay_command.add_argument("--report", type=Path, default=None,
                                help="write a Markdown evidence report per scenario into this folder")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from containment.replay import ScenarioError, replay

    try:
        return replay(args.scenarios, report_dir=args.report)
    except ScenarioError as error:
        print(f"malformed scenario: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
