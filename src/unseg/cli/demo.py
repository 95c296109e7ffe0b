"""``unseg demo``: the main job end to end on example images, with metrics where masks exist."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

#: Real H&E example images, when the repository sits beside the shared data folder.
EXAMPLE_DATA = Path("../shared/data/wsss4luad-val")
METHOD = "fseg"
PARAMS = {"backbone": "default", "k": 8, "random_state": 0}
MATCH = "majority"

EXAMPLES = f"""\
examples:
  unseg demo
  unseg demo --data my_tiles/ --out demo-output/

Segments {EXAMPLE_DATA} (real lung adenocarcinoma H&E with masks) when it exists, else a few
generated H&E-like tiles, with {METHOD} ({', '.join(f'{k}={v}' for k, v in PARAMS.items())}):
a concept bank is fitted on the images' own tiles with the embedded backbone (no download), and
every pixel gets the bank concept it is made of, the same concept ids in every image. Writes
OUT/labels/<name>.png, OUT/labels/<name>_overlay.png, where masks exist OUT/metrics.md and
OUT/metrics.json ({MATCH} matching over the whole dataset: each concept to its most frequent
class), and OUT/report/index.html, a report to open in a browser (`unseg report --help`).
"""


def add_parser(subparsers: argparse._SubParsersAction, argv: list[str]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="segment example images and report metrics",
        description="Segment example images end to end and report metrics where masks exist.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, help=f"images to segment (default: {EXAMPLE_DATA} "
                        "if present, else generated tiles)")
    parser.add_argument("--out", type=Path, default=Path("demo-output"),
                        help="output folder (default: demo-output)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from unseg import methods
    from unseg.cli._report import exit_code
    from unseg.data import discover
    from unseg.data.synthetic import write_dataset
    from unseg.io import atomic_write
    from unseg.workflows import evaluate_folders, segment_samples
    from unseg.workflows.report import write_report

    data = args.data
    if data is None:
        if EXAMPLE_DATA.is_dir():
            data = EXAMPLE_DATA
        else:
            data = write_dataset(args.out / "data", n=4, kind="he_tile", random_state=0)
            print(f"{EXAMPLE_DATA} not found: generated {data}")
    samples = discover([data])
    segmenter = methods.create(METHOD, **PARAMS)
    labels = args.out / "labels"
    run = segment_samples(segmenter, samples, labels)
    print(f"segmented {len(run.written)} image(s) from {data} with {segmenter!r} into {labels}")
    if run.written and all(s.mask is not None for s in samples):
        result = evaluate_folders(labels, data, match=MATCH, scope="dataset")
        report = result.to_markdown()
        print(report)
        with atomic_write(args.out / "metrics.md") as tmp:
            tmp.write_text(report + "\n")
        with atomic_write(args.out / "metrics.json") as tmp:
            tmp.write_text(json.dumps(result.to_dict(), indent=2))
        print(f"wrote {args.out / 'metrics.md'} and {args.out / 'metrics.json'}")
    if run.written:
        index = write_report([labels], args.out / "report", match=MATCH)
        print(f"wrote {index}: open it in a browser")
    return exit_code(run.failures)
