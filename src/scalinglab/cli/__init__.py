"""The `scalinglab` command: one thin module per subcommand over the library."""
from __future__ import annotations

import argparse
import sys

from ..errors import ScalingLabError
from . import demo, fit, plan

COMMANDS = {"fit": fit, "plan": plan, "demo": demo}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake as a ScalingLabError: one `error:` line, no usage dump."""

    def error(self, message):
        raise ScalingLabError(f"{self.prog}: {message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="scalinglab", description="Scaling-law studies: train a grid, fit every law, "
                                                    "predict, plan (Kaplan et al. 2020; Hoffmann et al. 2022).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in COMMANDS.items():
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        return int(COMMANDS[args.command].run(args) or 0)
    except ScalingLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
