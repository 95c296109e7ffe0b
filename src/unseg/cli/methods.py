"""``unseg methods``: the registered methods, one line each."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction, argv: list[str]) -> None:
    parser = subparsers.add_parser(
        "methods",
        help="list the segmentation methods",
        description="List the registered segmentation methods with a one-line description.",
        epilog="example:\n  unseg methods\n  unseg segment slic --help    (one method's options)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from unseg import methods

    names = methods.list()
    width = max(len(n) for n in names)
    for name in names:
        cls = methods.get(name)
        fit = "fit " if cls.requires_fit else "    "
        print(f"{name:<{width}}  {fit} {cls.summary()}")
    print("\n'fit': learns from the images (`unseg fit`, or fitted on the inputs by `segment`).")
    return 0
