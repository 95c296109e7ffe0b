"""``unseg probe``: linear probing of F-SEG concept memberships with labelled images."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from unseg.cli._options import add_method_options, method_params

EXAMPLES = """\
examples:
  unseg probe --train labelled_train/ --test labelled_test/
  unseg probe --train a/ --test b/ --backbone resnet50.tv_in1k --concepts tcga-resnet50 --k 32

--train and --test are folders holding img/ and mask/. Three probes learn from the training
masks. The concept probe is the F-SEG paper's (section 3.5.1): each image is factorized alone
into --n-concepts concepts; a concept with at least --threshold of its pixels in one class is a
training example of that class, its feature vector H_m; a logistic-regression classifier on
these labels each concept of a test image, and its pixels. The other two use each pixel's
memberships in the bank's concepts (the bank is fitted on the training images unless
--concepts names one): bank concept -> class association by thresholded pixel overlap, and a
logistic-regression classifier on the memberships. All predict the test images and are scored
as `unseg evaluate` does, with identity matching (predictions are class ids).
"""


def add_parser(subparsers: argparse._SubParsersAction, argv: list[str]) -> None:
    from unseg import methods

    parser = subparsers.add_parser(
        "probe",
        help="score F-SEG concepts with a linear probe on labelled images",
        description="Linear probing of F-SEG concept memberships on labelled images.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--train", required=True, type=Path, help="labelled folder (img/, mask/)")
    parser.add_argument("--test", required=True, type=Path, help="labelled folder (img/, mask/)")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="overlap a concept needs with a class to be associated (default 0.5)")
    parser.add_argument("--pixels-per-image", type=int, default=2000,
                        help="training pixels sampled per image (default: 2000)")
    parser.add_argument("--json", type=Path, help="also write every metric to this JSON file")
    add_method_options(parser, methods.get("fseg"))
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from unseg.cli._report import exit_code
    from unseg.data import discover
    from unseg.io import atomic_write
    from unseg.io.atomic import refuse_inputs_as_outputs
    from unseg.methods.factorization import FSegSegmenter
    from unseg.workflows import Failures, probe, read_images
    from unseg.workflows.folders import sample_paths

    segmenter = FSegSegmenter(**method_params(args))
    train, test = discover([args.train]), discover([args.test])
    if args.json:
        refuse_inputs_as_outputs([args.json], sample_paths(train + test))
    failures = Failures()
    segmenter.fit(read_images(train, failures, "fitting fseg"))
    result = probe(segmenter, train, test, threshold=args.threshold,
                   pixels_per_image=args.pixels_per_image)
    print(result.to_markdown())
    if args.json:
        with atomic_write(args.json) as tmp:
            tmp.write_text(json.dumps(result.to_dict(), indent=2))
        print(f"wrote {args.json}")
    for name, message in result.failures:
        failures.add(name, message)
    return exit_code(failures)
