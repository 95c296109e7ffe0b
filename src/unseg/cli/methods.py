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


#: Why each default number of labels is what it is.
DEFAULTS = """\
Default number of labels (k, the labels of methods whose ids mean the same in every image):
  fseg 16            the smallest concept bank shown in the F-SEG paper (k = 16 and 64)
  cuts 10            the CUTS paper's choice for its spectral k-means (k = 10)
  cirs, air, wnet 4  the CIRS thesis's K: one segment per object of the sky-and-fruit scenes
  dsm, acseg 8       two segments per class of 4-class H&E data (tumour, stroma, normal,
                     glass); the two-step report's 21 is PASCAL VOC's class count. k is the
                     number of dataset labels; segments per image come from the eigengap (dsm)
                     or the prototypes (acseg)
  kmeans-color*, random, dff 4
                     one per class of 4-class H&E data
  dfc 100            the DFC paper's response channels (its argmax then uses far fewer)
Per-image methods (per image) give region ids that mean nothing across images."""


def run(args: argparse.Namespace) -> int:
    from unseg import methods

    names = methods.list()
    width = max(len(n) for n in names)
    for name in names:
        cls = methods.get(name)
        fit = "fit" if cls.requires_fit else ""
        params = cls.parameters()
        count = next((f"{p}={params[p].default}" for p in ("k", "max_labels") if p in params),
                     "per image")
        print(f"{name:<{width}}  {fit:<3}  {count:<14} {cls.summary()}")
    print("\n'fit': learns from the images (`unseg fit`, or fitted on the inputs by `segment`).")
    print(DEFAULTS)
    return 0
