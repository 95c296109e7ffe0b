"""``unseg evaluate``: compare label maps with ground-truth masks."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EXAMPLES = """\
examples:
  unseg evaluate --pred labels/ --gt ../shared/data/wsss4luad-val
  unseg evaluate --pred labels/ --gt masks/ --match majority --scope image --json metrics.json
  unseg evaluate --pred vessels/ --gt ../shared/data/drive-train --match foreground --scope image

Predictions OUT/<name>.png are paired with masks of the same name (--gt is a folder of masks
or a dataset folder holding mask/). Clusters are matched to classes once: over the whole
dataset (--scope dataset, the protocol for labels consistent across images) or per image.
Mask id 255 is ignored. Binary tasks (classes 0 and 1) also get Dice, Hausdorff, HD95, SSIM,
ERGAS and RMSE. --match foreground is the binary protocol of CUTS, guided by the ground truth:
the cluster most frequent under the foreground mask is the foreground, every other cluster the
background (use it with --scope image for per-image clusters). Definitions: docs/metrics.md.
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
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from unseg.io import atomic_write
    from unseg.io.atomic import refuse_inputs_as_outputs
    from unseg.workflows import evaluate_folders
    from unseg.workflows.folders import label_files

    if args.json:
        refuse_inputs_as_outputs([args.json], [*label_files(args.pred).values(),
                                               *label_files(args.gt).values()])
    result = evaluate_folders(args.pred, args.gt, match=args.match, scope=args.scope)
    print(result.to_markdown())
    if args.json:
        with atomic_write(args.json) as tmp:
            tmp.write_text(json.dumps(result.to_dict(), indent=2))
        print(f"wrote {args.json}")
    for name, message in result.failures:
        print(f"unseg: skipped {name}: {message}", file=sys.stderr)
    return 1 if result.failures else 0
