"""``unseg concepts``: fit concept banks on a cohort, list the published ones."""

from __future__ import annotations

import argparse
from pathlib import Path

from unseg.cli.slide import add_slide_options, slide_options

EXAMPLES = """\
examples:
  unseg concepts fit --backbone default --data tiles/ --k 16,32,64 --out bank.npz
  unseg concepts fit --backbone resnet50.tv_in1k --data cohort_a/ cohort_b/ --out bank.npz
  unseg concepts fit --data slides/ --tiles-per-slide 200 --magnification 10 --out bank.npz
  unseg concepts list
  unseg segment fseg new_tiles/ --concepts bank.npz --k 16 --out labels/

A bank holds k-means centres of the backbone's globally pooled tile features for each k, with
provenance (backbone, layer, data, date) in one .npz. Memory stays bounded: k-means runs on a
uniform sample of at most --max-vectors tile vectors. From whole slides (files, or folders of
them) --tiles-per-slide tissue tiles are sampled per slide at --magnification.
"""


def _ks(text: str) -> list[int]:
    try:
        ks = [int(k) for k in text.split(",") if k.strip()]
    except ValueError:
        message = f"expected comma-separated integers, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError(f"expected positive bank sizes, got {text!r}")
    return ks


def add_parser(subparsers: argparse._SubParsersAction, argv: list[str]) -> None:
    parser = subparsers.add_parser(
        "concepts",
        help="fit concept banks on a cohort, list published banks",
        description="Fit concept banks (k-means centres of backbone features) or list them.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    fit = actions.add_parser("fit", help="fit banks on images", epilog=EXAMPLES,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    fit.add_argument("--backbone", default="default", help="feature extractor (default: default)")
    fit.add_argument("--weights", help="backbone weights: a local file or folder, or 'random'")
    fit.add_argument("--layer", help="backbone layer (default: the backbone's own)")
    fit.add_argument("--data", nargs="+", required=True, type=Path,
                     help="images, slides, or folders of either")
    fit.add_argument("--k", type=_ks, default=[16, 32, 64, 128, 256],
                     help="bank sizes, comma-separated (default: 16,32,64,128,256)")
    fit.add_argument("--out", required=True, type=Path, help="bank file to write (.npz)")
    fit.add_argument("--tile-size", type=int, help="tile side (default: the backbone's input size)")
    fit.add_argument("--max-vectors", type=int, default=50_000,
                     help="tile vectors k-means runs on at most (default: 50000)")
    fit.add_argument("--device", default="cpu", help="cpu, cuda, ... (default: cpu)")
    fit.add_argument("--random-state", type=int, default=0, help="seed (default: 0)")
    add_slide_options(fit, tiling=False)
    fit.set_defaults(run=run_fit)
    listing = actions.add_parser("list", help="list the published banks and where they are",
                                 epilog="example:\n  unseg concepts list",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    listing.set_defaults(run=run_list)


def run_fit(args: argparse.Namespace) -> int:
    from unseg import backbones
    from unseg.cli._report import exit_code
    from unseg.workflows.concepts import fit_cohort_bank

    backbone = backbones.create(args.backbone, weights=args.weights, layer=args.layer,
                                device=args.device)
    options = slide_options(args, tile_size=args.tile_size or backbone.config.input_size)
    run = fit_cohort_bank(backbone, args.data, args.k, options, args.out,
                          max_vectors=args.max_vectors, random_state=args.random_state)
    print(f"fitted k = {', '.join(map(str, run.bank.ks))} on {run.bank.fitted_on['tiles']} "
          f"tiles of {run.n_images} image(s) and {run.n_slides} slide(s) with {backbone.name}; "
          f"wrote {args.out}")
    return exit_code(run.failures)


def run_list(args: argparse.Namespace) -> int:
    from unseg.concepts import PUBLISHED
    from unseg.concepts.published import search_dirs

    folders = search_dirs()
    print("| name | backbone | C | file | found in |")
    print("|---|---|---|---|---|")
    for bank in PUBLISHED.values():
        found = next((str(d) for d in folders if (d / bank.file).is_file()), "not here yet")
        print(f"| {bank.name} | {bank.backbone} | {bank.channels} | {bank.file} | {found} |")
    print(f"\nSearched: {', '.join(map(str, folders))} (set UNSEG_CONCEPTS_DIR to add folders). "
          "A published bank not found is downloaded once from the F-SEG repository.")
    return 0
