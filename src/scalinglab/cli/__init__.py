"""The `scalinglab` command: one thin module per subcommand over the library."""
from __future__ import annotations

import argparse
import errno
import sys

from ..errors import ScalingLabError
from . import compare, demo, export, fit, plan, report, run, train
from .common import in_cli_terms

COMMANDS = {"run": run, "train": train, "fit": fit, "plan": plan, "report": report, "export": export,
            "compare": compare, "demo": demo}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake as a ScalingLabError: one `error:` line, no usage dump."""

    def error(self, message):
        raise ScalingLabError(f"{self.prog}: {message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="scalinglab",
                     description="Scaling-law studies: train a grid, fit every law, predict, plan "
                                 "(Kaplan et al. 2020; Hoffmann et al. 2022).")
    from .. import __version__
    parser.add_argument("--version", action="version", version=f"scalinglab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in COMMANDS.values():
        module.add_parser(sub)
    return parser


def _join_negative_numbers(argv: list[str]) -> list[str]:
    """`--flops -1e20` -> `--flops=-1e20`: argparse takes "-1e20" for an option, and the user deserves to
    hear that the budget is negative, not that --flops lacks an argument."""
    out: list[str] = []
    for tok in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and tok.startswith("-"):
            try:
                float(tok)
            except ValueError:
                pass
            else:
                out[-1] = f"{out[-1]}={tok}"
                continue
        out.append(tok)
    return out


# the filesystem said no to a write (issue 30 R10: a full disk was an OSError traceback): one error line
WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EFBIG}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = _join_negative_numbers(sys.argv[1:] if argv is None else list(argv))
    try:
        args = parser.parse_args(argv)
        args.argv = argv  # what a launcher re-runs in each process (train --nproc)
        if args.command is None:
            parser.print_help()
            return 2
        return int(COMMANDS[args.command].run(args) or 0)
    except ScalingLabError as exc:
        print(f"error: {in_cli_terms(str(exc), exc.params)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `scalinglab ... | head`: the reader left; no traceback for that
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        if exc.errno not in WRITE_ERRORS:
            raise  # anything else is a bug to see, not to word away
        where = f" {exc.filename}" if exc.filename else ""
        code = errno.errorcode.get(exc.errno, exc.errno)
        print(f"error: cannot write{where}: {exc.strerror} ({code}); free space, or choose another --out",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
