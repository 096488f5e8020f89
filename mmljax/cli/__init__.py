"""The `mmljax` command: `mmljax check | fit | bench`.

Each subcommand lives in its own module `mmljax.cli.<name>` exposing `NAME`, `HELP`,
`add_arguments(parser)` and `run(args) -> int`. User errors (bad files, bad options, bad shapes)
print one line on stderr and exit with status 2; so does an output file that cannot be written or
would overwrite an input (checked before any work where possible). Status 1 is reserved for "a
check failed / an accuracy bar missed". Set `MMLJAX_DEBUG=1` for the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import bench as _bench
from . import check as _check
from . import fit as _fit

COMMANDS = [_check, _fit, _bench]


def build_parser() -> argparse.ArgumentParser:
    """The `argparse` parser of the `mmljax` command, one subparser per module in `COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="mmljax",
        description=(
            "mmljax: differentiable modelling in JAX. Hand-derived derivatives checked against "
            "autodiff and finite differences, accurate least squares, honest benchmarks."
        ),
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"mmljax {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in COMMANDS:
        p = sub.add_parser(
            mod.NAME, help=mod.HELP, description=mod.DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `mmljax` with `argv` (default: the process's arguments) and return the exit status:
    the command's own (0 success, 1 a check failed or an accuracy bar was missed), 2 for a usage or
    input error (printed as one line on stderr), 130 when interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args))
    except (ValueError, TypeError, OSError, RuntimeError) as e:
        if os.environ.get("MMLJAX_DEBUG"):
            raise
        print(f"mmljax {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mmljax {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
