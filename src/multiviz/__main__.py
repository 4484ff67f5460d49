"""Command line: ``python -m multiviz demo [--data PATH.h5mu] [--out DIR]``."""

from __future__ import annotations

import argparse
import sys
import warnings


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m multiviz`` and the ``multiviz`` script."""
    parser = argparse.ArgumentParser(prog="multiviz", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="analyse the shipped PBMC CITE-seq cells and simulated Patch-seq (offline, ~1-2 min)",
    )
    demo.add_argument(
        "--data", default=None, help="your paired .h5mu file instead of the shipped PBMC cells"
    )
    demo.add_argument("--out", default="demo_output", help="output folder (default: demo_output)")
    demo.add_argument("--random-state", type=int, default=0, help="seed (default: 0)")
    demo.add_argument(
        "--quick", action="store_true", help="short sBNN schedule (seconds, for smoke tests)"
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        # the command line is ours: hide library notices that say nothing about the analysis
        warnings.filterwarnings("ignore", category=FutureWarning, module="mudata")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        run_demo(data=args.data, out=args.out, random_state=args.random_state, quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
