"""`python -m experiments NAME [options]`: run one experiment (or `all`, or `--list`).

Options after NAME go to the experiment (`--quick`, `--out`, `--seed`, `--device`, ...; see
`python -m experiments NAME --help`). With `all`, each experiment writes to `OUT/NAME/`
(default `results/NAME/`).
"""

from __future__ import annotations

import importlib
import os
import sys

from . import EXPERIMENTS

USAGE = (
    "usage: python -m experiments NAME [--quick] [--out DIR] [--seed S] [--device auto|cpu|gpu]\n"
    "       python -m experiments all [--quick] [--out DIR] ...\n"
    "       python -m experiments --list\n"
    f"experiments: {', '.join(EXPERIMENTS)}"
)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] == "--list":
        for name in EXPERIMENTS:
            mod = importlib.import_module(f"experiments.{name}")
            print(f"{name:22s} {mod.DESCRIPTION.splitlines()[0]}")
        return 0
    name, rest = argv[0], argv[1:]
    names = EXPERIMENTS if name == "all" else (name,)
    if name != "all" and name not in EXPERIMENTS:
        print(f"experiments: unknown experiment {name!r}\n{USAGE}", file=sys.stderr)
        return 2
    for exp in names:
        mod = importlib.import_module(f"experiments.{exp}")
        exp_argv = rest
        if name == "all" and "--out" in rest:
            i = rest.index("--out")
            exp_argv = rest[:i] + ["--out", f"{rest[i + 1]}/{exp}"] + rest[i + 2 :]
        try:
            mod.main(exp_argv)
        except ValueError as e:  # a user's mistake (bad option value, missing GPU): one line, non-zero exit
            if os.environ.get("MMLJAX_DEBUG"):
                raise
            print(f"experiments {exp}: error: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
