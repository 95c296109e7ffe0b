"""Whole-slide segmentation speed and memory: serial and on Dask, slide size, resume overhead.

Run from the repository root:

    .venv/bin/python benchmarks/slides.py [--size 40000] [--work /tmp/unseg-slides]

Generates H&E-like pyramidal slides (``unseg.data.synthetic.write_synthetic_slide``, 0.25 um/px,
a 40x scan) of ``--size`` and ``--size / 2`` pixels a side (4x the area between them), fits
F-SEG with the embedded default backbone (k = 16) on tissue tiles of the smaller slide, then runs
``unseg slide segment`` at 10x (256 px tiles, 32 px overlap) as a user would, each run in its own
process: serially on both slides, and with ``--workers 2`` (a Dask LocalCluster) on the larger.
Peak memory is the largest sum of resident memory over the process and all its children
(Dask's workers), sampled every 0.1 s. The resume row kills the serial run on the smaller slide
halfway through its batches and runs it again; its overhead is the two runs' total time minus
the uninterrupted run's. Every run ends with the slide's outputs (OME-TIFF, GeoJSON, areas,
overlay): they are part of the time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from unseg import methods
from unseg.data.synthetic import write_synthetic_slide
from unseg.workflows.cohorts import fit_on_slides
from unseg.workflows.slide_plan import SlideOptions, plan_slide

OPTIONS = SlideOptions()  # 10x, 256 px tiles, 32 px overlap


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run(args: list[str], *, kill_when: Path | None = None, kill_at: int = 0
        ) -> tuple[float, float, bool]:
    """Run a command; returns (seconds, peak tree RSS in MiB, whether it was killed)."""
    start = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    handle = psutil.Process(process.pid)
    peak, killed = 0, False
    while process.poll() is None:
        peak = max(peak, tree_rss(handle))
        if kill_when is not None and kill_when.exists():
            if len(kill_when.read_text().split()) >= kill_at:
                process.send_signal(signal.SIGKILL)
                killed = True
        time.sleep(0.1)
    seconds = time.perf_counter() - start
    if process.returncode != 0 and not killed:
        raise SystemExit(f"{' '.join(args)} failed:\n{process.stderr.read().decode()}")
    return seconds, peak / 2**20, killed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=40_000, help="side of the larger slide")
    parser.add_argument("--work", type=Path, default=Path("/tmp/unseg-slides"))
    parser.add_argument("--k", type=int, default=16)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    slides = {}
    for side in (args.size // 2, args.size):
        path = args.work / f"slide{side}.tif"
        if not path.exists():
            start = time.perf_counter()
            write_synthetic_slide(path, side, side, random_state=side)
            print(f"generated {path} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        slides[side] = path
    small, large = slides[args.size // 2], slides[args.size]
    model = args.work / f"fseg-k{args.k}.model"
    if not model.exists():
        segmenter = methods.create("fseg", k=args.k, tile_size=64)
        fit_on_slides(segmenter, [plan_slide(small, OPTIONS)], OPTIONS, model)
    command = [sys.executable, "-m", "unseg.cli.main", "slide", "segment", "--method", "fseg",
               "--model", str(model)]

    rows = []

    def case(name: str, slide: Path, extra: list[str], *, out: Path | None = None,
             fresh: bool = True, **kill: object) -> tuple[float, bool]:
        out = out or args.work / f"out-{name}"
        if fresh:
            shutil.rmtree(out, ignore_errors=True)
        seconds, peak, killed = run([*command, str(slide), "--out", str(out), *extra],
                                    **kill)  # type: ignore[arg-type]
        if not killed and name != "resumed":
            summary = json.loads((out / f"{slide.stem}.json").read_text())
            rows.append((name, f"{slide.stem[5:]}^2", summary["tiles"], seconds,
                         summary["tiles"] / seconds, peak))
        return seconds, killed

    case("serial", small, [])
    case("serial", large, [])
    case("dask-2-workers", large, ["--workers", "2"])
    # resume: kill the small slide's run halfway, then run it again
    out = args.work / "out-resume"
    shutil.rmtree(out, ignore_errors=True)
    batches = -(-len(plan_slide(small, OPTIONS).tiles) // OPTIONS.batch_size)
    first, killed = case("killed", small, [], out=out,
                         kill_when=out / f"{small.stem}.partial/done.txt", kill_at=batches // 2)
    second, _ = case("resumed", small, [], out=out, fresh=False)
    uninterrupted = rows[0][3]  # the serial run of the smaller slide

    print("| run | slide (px) | tissue tiles | seconds | tiles/s | peak memory (MiB) |")
    print("|---|---|---|---|---|---|")
    for name, size, tiles, seconds, rate, peak in rows:
        print(f"| {name} | {size} | {tiles} | {seconds:.0f} | {rate:.1f} | {peak:.0f} |")
    serial = [r for r in rows if r[0] == "serial"]
    growth = serial[1][5] / serial[0][5] - 1
    print(f"\npeak memory, 4x the slide area: {100 * growth:+.1f}% (target: within 20%)")
    print(f"resume: killed={killed} halfway, {first:.0f} s + {second:.0f} s resumed vs "
          f"{uninterrupted:.0f} s uninterrupted: overhead {first + second - uninterrupted:+.0f} s")
    print(f"({os.cpu_count()} CPU cores; fseg, default backbone, k={args.k}, 10x, 256 px tiles)")


if __name__ == "__main__":
    main()
