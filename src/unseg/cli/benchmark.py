"""``unseg benchmark``: several methods on one labelled folder, one table and one plot."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from unseg.cli.evaluate import add_mask_options, mask_options
from unseg.cli.report import add_report_option, report_run

EXAMPLES = """\
examples:
  unseg benchmark --data ../shared/data/wsss4luad-val \\
      --methods random,kmeans-color,kmeans-color-dataset,watershed,felzenszwalb,slic --out bench/
  unseg benchmark --data ../shared/data/drive-train --methods kmeans-color,slic \\
      --param k=2 --scope image --out bench-drive/

--data is a folder holding img/ and mask/. Writes OUT/benchmark.md, OUT/benchmark.csv,
OUT/benchmark.png, OUT/benchmark.json (every metric, for `unseg report`) and each method's
label maps under OUT/predictions/<method>/; --report also writes OUT/report/index.html.
Classes are named after the dataset's classes.json or classes.txt.
"""


def _param(text: str) -> tuple[str, Any]:
    import ast

    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name.replace("-", "_"), ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name.replace("-", "_"), value


def add_parser(subparsers: argparse._SubParsersAction, argv: list[str]) -> None:
    from unseg.eval import MATCH_METHODS, SCOPES

    parser = subparsers.add_parser(
        "benchmark",
        help="compare methods on a labelled folder",
        description="Run several methods on a labelled folder and tabulate quality and cost.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", required=True, type=Path, help="folder holding img/ and mask/")
    parser.add_argument("--methods", required=True, help="comma-separated method names")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--match", choices=MATCH_METHODS, default="hungarian",
                        help="how clusters are matched to classes (default: hungarian)")
    parser.add_argument("--scope", choices=SCOPES, default="dataset",
                        help="one matching for the dataset or one per image (default: dataset)")
    parser.add_argument("--param", type=_param, action="append", default=[], metavar="NAME=VALUE",
                        help="a parameter for every method that has it (repeatable), e.g. k=4")
    add_mask_options(parser)
    add_report_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from unseg.workflows.benchmark import markdown_table, run_benchmark, write_reports

    names = [n.strip() for n in args.methods.split(",") if n.strip()]
    rows = run_benchmark(
        args.data, names, args.out, match=args.match, scope=args.scope, params=dict(args.param),
        **mask_options(args),
    )
    print(markdown_table(rows))
    for path in write_reports(rows, args.out, data=args.data, match=args.match, scope=args.scope):
        print(f"wrote {path}")
    if args.report:
        report_run(args.out, None)
    failed = [(row.method, name, message) for row in rows
              for name, message in row.failures.items()]
    for method, name, message in failed:
        print(f"unseg: {method}: failed {name}: {message}", file=sys.stderr)
    return 1 if failed else 0
