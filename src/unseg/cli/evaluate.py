"""``unseg evaluate``: compare label maps with ground-truth masks."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

EXAMPLES = """\
examples:
  unseg evaluate --pred labels/ --gt ../shared/data/wsss4luad-val
  unseg evaluate --pred labels/ --gt masks/ --match majority --scope image --json metrics.json
  unseg evaluate --pred vessels/ --gt ../shared/data/drive-train --match foreground --scope image
  unseg evaluate --pred labels/ --gt fruit/test --match best-iou --scope image
  unseg evaluate --pred nuclei/ --gt ../shared/data/cpm-nuclei-dev --binarize --match foreground \
      --scope image

Predictions OUT/<name>.png are paired with masks of the same name (--gt is a folder of masks
or a dataset folder holding mask/). Clusters are matched to classes once: over the whole
dataset (--scope dataset, the protocol for labels consistent across images) or per image.
Mask id 255 is ignored (--ignore-id sets another or none). Instance masks (one id per object,
as for nuclei) are scored as foreground masks with --binarize: every nonzero id is foreground,
and no id is ignored unless --ignore-id says so. Binary tasks (classes 0 and 1) also get Dice,
Hausdorff, HD95, SSIM, ERGAS and RMSE. --match foreground is the binary protocol of CUTS,
guided by the ground truth: the cluster most frequent under the foreground mask is the
foreground, every other cluster the background (use it with --scope image for per-image
clusters). --match best-iou --scope image is the protocol of the CIRS thesis: per image, the
one-to-one mapping with the highest mIoU; its figure is the per-image mean. Definitions:
docs/metrics.md.
"""


def add_parser(subparsers: argparse._SubParsersAction, argv: list[str]) -> None:
    from unseg.eval import MATCH_METHODS, SCOPES

    parser = subparsers.add_parser(
        "evaluate",
        help="score label maps against ground-truth masks",
        description="Score predicted label maps against ground-truth masks.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--pred", required=True, type=Path, help="folder of predicted label maps")
    parser.add_argument("--gt", required=True, type=Path, help="folder of masks, or with mask/")
    parser.add_argument("--match", choices=MATCH_METHODS, default="hungarian",
                        help="how clusters are matched to classes (default: hungarian)")
    parser.add_argument("--scope", choices=SCOPES, default="dataset",
                        help="one matching for the dataset or one per image (default: dataset)")
    parser.add_argument("--json", type=Path, help="also write every metric to this JSON file")
    add_mask_options(parser)
    parser.set_defaults(run=run)


def _ignore_id(text: str) -> int | None:
    if text.lower() == "none":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a mask id or none, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a mask id >= 0 or none, got {value}")
    return value


def add_mask_options(parser: argparse.ArgumentParser) -> None:
    """How masks are read: --binarize and --ignore-id (also for `unseg benchmark`)."""
    parser.add_argument("--binarize", action="store_true",
                        help="score every nonzero mask id as foreground (instance masks: one id "
                             "per object, every object counted)")
    parser.add_argument("--ignore-id", type=_ignore_id, default=argparse.SUPPRESS,
                        metavar="ID|none",
                        help="mask id of pixels left out (default: 255; none with --binarize)")


def mask_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keywords of :func:`unseg.workflows.evaluate_folders` the options give."""
    default = None if args.binarize else 255
    return {"binarize": args.binarize, "ignore_index": getattr(args, "ignore_id", default)}


def run(args: argparse.Namespace) -> int:
    import sys

    from unseg.io import atomic_write
    from unseg.io.atomic import refuse_inputs_as_outputs
    from unseg.workflows import evaluate_folders
    from unseg.workflows.folders import label_files

    if args.json:
        refuse_inputs_as_outputs([args.json], [*label_files(args.pred).values(),
                                               *label_files(args.gt).values()])
    result = evaluate_folders(args.pred, args.gt, match=args.match, scope=args.scope,
                              **mask_options(args))
    print(result.to_markdown())
    if args.json:
        with atomic_write(args.json) as tmp:
            tmp.write_text(json.dumps(result.to_dict(), indent=2))
        print(f"wrote {args.json}")
    for name, message in result.failures:
        print(f"unseg: skipped {name}: {message}", file=sys.stderr)
    return 1 if result.failures else 0
