"""The one-dimensional example of the CIRS thesis (its section 4 and appendix 12.1).

An image is a row of cells holding integer colours; ``0`` is the background, which is known,
and objects are fixed runs of colours (``1122``) placed on it without overlap. A segmentation
of a dataset gives every image a list of segments (each a tuple of cell positions, in order),
and segments with the same index are the same object in every image.

Two objectives score a segmentation (:func:`score`); both subtract ``alpha2`` times the mean
segment size, summed over the images, ``sum_i sum_k J_i(k) / K_i``:

- colour clustering (section 4.1): ``alpha1 * sum_i sum_k var(S_k^i)``, the squared deviation
  of each segment's colours from their mean within its image. Its segmentation
  (:func:`segment_by_colour`) is the hard-constrained optimum the thesis uses: the largest
  runs of cells of exactly one colour, so ``1122`` becomes ``11`` and ``22``.
- cross-instance representation similarity (section 4.2): ``alpha1 * sum_k sum_j
  var_k(j)``, where ``var_k(j)`` is the squared deviation, across the images, of the colour of
  the ``j``-th cell of segment ``k`` (cells aligned by their order in the segment) from its
  mean. Its segmentation comes from the pattern-frequency procedure of appendix 12.1
  (:func:`segment_by_patterns`), which finds ``1122`` whole: the objective is lower for it,
  because the aligned cells never vary and its segments are larger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from unseg.errors import ParameterError

BACKGROUND = "0"
#: The dataset of sections 4.1.1, 4.2.1 and appendix 12.1: the object 1122 in 6 cells.
THESIS_IMAGES = ("112200", "011220", "001122")


def _check(images: Sequence[str]) -> list[str]:
    images = list(images)
    if not images or any(not im or not im.isdigit() for im in images):
        raise ParameterError(
            f"images must be non-empty strings of digits (0 the background), got {images!r}. "
            "Fix: pass images such as 112200 011220 001122.")
    return images


def instances(objects: Sequence[str], n: int, length: int = 6, *, random_state: int | None = 0
              ) -> list[str]:
    """``n`` images of ``length`` cells, each holding every object once, in a random order and
    at random non-overlapping positions, on the background ``0``."""
    objects = list(objects)
    if not objects or any(not o.isdigit() or set(o) <= {BACKGROUND} for o in objects):
        raise ParameterError(f"objects must be strings of digits that are not all background "
                             f"(0), got {objects!r}. Fix: pass objects such as 1122.")
    free = length - sum(len(o) for o in objects)
    if free < 0 or n < 1:
        raise ParameterError(f"n must be >= 1 and length >= {length - free} to hold the objects; "
                             f"got n={n}, length={length}.")
    rng = np.random.default_rng(random_state)
    images = []
    for _ in range(n):
        # the background cells are split at random into len(objects) + 1 gaps
        cuts = np.sort(rng.integers(0, free + 1, size=len(objects)))
        gaps = np.diff(np.concatenate([[0], cuts, [free]]))
        order = rng.permutation(len(objects))
        parts = [BACKGROUND * int(gaps[0])]
        for gap, index in zip(gaps[1:], order, strict=True):
            parts += [objects[index], BACKGROUND * int(gap)]
        images.append("".join(parts))
    return images


def pattern_counts(images: Sequence[str]) -> dict[str, int]:
    """Steps 1 and 2 of appendix 12.1: every run of 1 to ``length - 1`` adjacent cells found in
    the images, with the number of images holding it at least once; by size, then first seen."""
    images = _check(images)
    counts: dict[str, int] = {}
    for size in range(1, max(len(im) for im in images)):
        for image in images:
            for pattern in dict.fromkeys(image[s : s + size] for s in range(len(image) - size + 1)):
                counts[pattern] = counts.get(pattern, 0) + 1
    return counts


@dataclass(frozen=True)
class Found:
    """One object found by :func:`segment_by_patterns`."""

    pattern: str
    #: The number of images holding it when it was selected.
    count: int
    #: Where it was matched in each image (its first cell), None where it was not.
    starts: tuple[int | None, ...]


@dataclass(frozen=True)
class Segmentation:
    """Segments of every image: ``segments[i][k]`` are the positions of segment ``k`` of image
    ``i`` in order; ``names[k]`` says what segment ``k`` is."""

    names: tuple[str, ...]
    segments: tuple[tuple[tuple[int, ...], ...], ...]

    def show(self, images: Sequence[str], i: int) -> str:
        """Image ``i`` as its segments, for example ``[1122][00]``."""
        return "".join(f"[{''.join(images[i][p] for p in cells)}]"
                       for cells in self.segments[i] if cells)


def segment_by_patterns(images: Sequence[str]) -> tuple[Segmentation, list[Found]]:
    """The pattern-frequency procedure of appendix 12.1.

    Step 3 selects the pattern held by the most images, the largest among those, the first
    seen among equals, among the patterns without background cells (the background is known:
    docs/cirs.md); step 4 replaces its first match in every image with background; step 5
    repeats until only background is left. The segmentation has one segment per object found,
    in the order found, then the background (every cell not in an object).
    """
    images = _check(images)
    current = list(images)
    found: list[Found] = []
    while True:
        candidates = [(count, len(p), p) for p, count in pattern_counts(current).items()
                      if BACKGROUND not in p]
        if not candidates:
            break
        best = max(candidates, key=lambda c: (c[0], c[1]))  # max keeps the first of equals
        pattern = best[2]
        starts = tuple(im.find(pattern) if pattern in im else None for im in current)
        found.append(Found(pattern, best[0], starts))
        current = [im if s is None else im[:s] + BACKGROUND * len(pattern) + im[s + len(pattern):]
                   for im, s in zip(current, starts, strict=True)]
    segments = []
    for i, image in enumerate(images):
        objects = [() if (start := f.starts[i]) is None
                   else tuple(range(start, start + len(f.pattern))) for f in found]
        taken = {p for cells in objects for p in cells}
        segments.append((*objects, tuple(p for p in range(len(image)) if p not in taken)))
    return Segmentation((*[f.pattern for f in found], "background"), tuple(segments)), found


def segment_by_colour(images: Sequence[str]) -> Segmentation:
    """Colour clustering under the thesis's hard constraint (no colour variance within a
    segment): each maximal run of one object colour is a segment, and the background is one
    segment, as in :func:`segment_by_patterns`. Segment ``k`` is the ``n``-th run of colour
    ``c`` in every image, named ``c`` (``c#n`` from the second run on); the background last."""
    images = _check(images)
    runs: list[dict[tuple[str, int], tuple[int, ...]]] = []
    for image in images:
        own: dict[tuple[str, int], tuple[int, ...]] = {}
        start = 0
        for end in range(1, len(image) + 1):
            if end == len(image) or image[end] != image[start]:
                colour = image[start]
                if colour != BACKGROUND:
                    nth = sum(1 for c, _ in own if c == colour)
                    own[(colour, nth)] = tuple(range(start, end))
                start = end
        runs.append(own)
    keys = sorted({key for own in runs for key in own})
    names = tuple(c if n == 0 else f"{c}#{n + 1}" for c, n in keys)
    segments = []
    for image, own in zip(images, runs, strict=True):
        background = tuple(p for p, c in enumerate(image) if c == BACKGROUND)
        segments.append((*[own.get(key, ()) for key in keys], background))
    return Segmentation((*names, "background"), tuple(segments))


@dataclass(frozen=True)
class Scores:
    """The two objectives of one segmentation and their terms."""

    #: ``sum_k sum_j var_k(j)``: colours of aligned cells varying across the images.
    aligned_variance: float
    #: ``sum_i sum_k var(S_k^i)``: colours varying within each image's segments.
    colour_variance: float
    #: ``sum_i sum_k J_i(k) / K_i``: the mean segment size of each image, summed.
    size: float
    cross_instance: float
    colour: float


def score(images: Sequence[str], segmentation: Segmentation, *, alpha1: float = 1.0,
          alpha2: float = 1.0) -> Scores:
    """Both objectives of section 4 for ``segmentation`` of ``images`` (lower is better).

    Variances are sums of squared deviations, as in the thesis; an aligned cell ``j`` of
    segment ``k`` varies across the images whose segment ``k`` has a ``j``-th cell.
    """
    images = _check(images)
    values = [np.array([int(c) for c in im], dtype=np.float64) for im in images]
    colour_variance, size = 0.0, 0.0
    for value, segments in zip(values, segmentation.segments, strict=True):
        present = [value[list(cells)] for cells in segments if cells]
        colour_variance += sum(float(((v - v.mean()) ** 2).sum()) for v in present)
        size += sum(len(v) for v in present) / len(present)
    aligned = 0.0
    for k in range(len(segmentation.names)):
        cells = [value[list(segments[k])] for value, segments
                 in zip(values, segmentation.segments, strict=True)]
        for j in range(max(len(c) for c in cells)):
            column = np.array([c[j] for c in cells if len(c) > j])
            aligned += float(((column - column.mean()) ** 2).sum())
    return Scores(aligned, colour_variance, size, alpha1 * aligned - alpha2 * size,
                  alpha1 * colour_variance - alpha2 * size)
