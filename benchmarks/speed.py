"""Speed where users run it: per-image time of F-SEG, the default backbone, a ResNet50 and colour
k-means, on an idle machine and beside two CPU-bound processes.

Usage (from the repository root, with the ../shared/data folder beside it)::

    python benchmarks/speed.py [--data ../shared/data/wsss4luad-val] [--repeats 2]

Images: the WSSS4LUAD validation patches (0.05-0.23 megapixels) and two generated patches of 1
and 4 megapixels (a real patch tiled). Threads are set as the command line sets them
(:func:`unseg._threads.configure`: the cores this process may use, a short OpenMP spin).
Each figure is the best of ``--repeats`` passes, per image (for the patch set: the total over
the patches divided by their count). "loaded" runs the same beside two processes that keep a
core busy each (started and stopped by this script); the ratio to the idle figure shows whether
a run takes its share of a loaded machine (2 on 2 cores) or far more. Targets: fseg per image
at most 2x kmeans-color's time; the default backbone at most 0.5x a ResNet50's time on the
same pixels; loaded at most 2.5x idle.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections.abc import Callable
from pathlib import Path

from unseg._threads import configure

THREADS = configure()

import numpy as np  # noqa: E402 - after the thread pools are sized

from unseg import backbones, methods  # noqa: E402
from unseg.io import read_image  # noqa: E402


def _busy(stop: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def _tiled(image: np.ndarray, megapixels: float) -> np.ndarray:
    side = int(round((megapixels * 1e6) ** 0.5 / 8)) * 8
    reps = (-(-side // image.shape[0]), -(-side // image.shape[1]), 1)
    return np.tile(image, reps)[:side, :side]


def _best(run: Callable[[], None], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/wsss4luad-val"))
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    files = sorted((args.data / "img").glob("*.png"))
    if not files:
        sys.exit(f"no images in {args.data / 'img'}")
    patches = [read_image(f) for f in files]
    sets = {"wsss4luad-val": patches, "1 MP": [_tiled(patches[0], 1)],
            "4 MP": [_tiled(patches[0], 4)]}

    default = backbones.create("default")
    resnet = backbones.create("resnet50", weights="random", layer="layer3")

    def features(backbone: backbones.Backbone) -> Callable[[np.ndarray], object]:
        def run(image: np.ndarray) -> object:
            h, w = (s // 32 * 32 for s in image.shape[:2])
            return backbone.features([image[:h, :w]])
        return run

    fsegs = {k: methods.create("fseg", k=k, random_state=0).fit(patches) for k in (8, 16)}
    kmeans = methods.create("kmeans-color", k=8, random_state=0)
    runs: dict[str, Callable[[np.ndarray], object]] = {
        "kmeans-color k=8": kmeans.predict,
        "fseg k=8": fsegs[8].predict,
        "fseg k=16": fsegs[16].predict,
        "default backbone": features(default),
        "resnet50 (random) layer3": features(resnet),
    }

    def seconds_per_image(run: Callable[[np.ndarray], object], images: list[np.ndarray]) -> float:
        return _best(lambda: [run(im) for im in images], args.repeats) / len(images)

    def measure() -> dict[tuple[str, str], float]:
        return {(name, set_name): seconds_per_image(run, images)
                for set_name, images in sets.items() for name, run in runs.items()}

    idle = measure()
    stop = multiprocessing.Event()
    load = [multiprocessing.Process(target=_busy, args=(stop,)) for _ in range(2)]
    for process in load:
        process.start()
    try:
        loaded = measure()
    finally:
        stop.set()
        for process in load:
            process.join()

    print(f"threads: {THREADS}; best of {args.repeats}; seconds per image\n")
    print("| images | method | s/image idle | MP/s idle | s/image loaded | loaded / idle |")
    print("|---|---|---|---|---|---|")
    for (name, set_name), seconds in idle.items():
        pixels = np.mean([im.shape[0] * im.shape[1] for im in sets[set_name]]) / 1e6
        print(f"| {set_name} | {name} | {seconds:.3f} | {pixels / seconds:.2f} | "
              f"{loaded[name, set_name]:.3f} | {loaded[name, set_name] / seconds:.2f} |")
    print("\n| images | fseg k=8 / kmeans-color | default backbone / resnet50 |")
    print("|---|---|---|")
    for set_name in sets:
        fseg = idle["fseg k=8", set_name] / idle["kmeans-color k=8", set_name]
        backbone = idle["default backbone", set_name] / idle["resnet50 (random) layer3", set_name]
        print(f"| {set_name} | {fseg:.2f} | {backbone:.2f} |")


if __name__ == "__main__":
    main()
