"""``unseg backbones``: the feature extractors, their sources, licences and weights."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction, argv: list[str]) -> None:
    parser = subparsers.add_parser(
        "backbones",
        help="list the feature extractors",
        description="List the named backbones: source, feature size, stride, licence, and "
        "whether their weights are available offline. Any timm model name also works.",
        epilog="example:\n  unseg backbones\n"
        "  unseg segment fseg tiles/ --backbone resnet50.tv_in1k --concepts tcga-resnet50 "
        "--out labels/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from unseg import backbones

    print("| name | source | C | stride | licence | weights offline | what |")
    print("|---|---|---|---|---|---|---|")
    for info in backbones.list():
        offline = "yes" if info.weights_available_offline else "no"
        print(f"| {info.name} | {info.source} | {info.channels} | {info.stride} | "
              f"{info.licence} | {offline} | {info.description} |")
    return 0
