"""The one-dimensional example of the CIRS thesis: objects as runs of integer colours.

Each instance is a row of ``length`` pixels: a background of colour 0 holding one to three
copies of the object ``1122`` (two pixels of colour 1, then two of colour 2). Colours have
intensities 0 -> 0.5, 1 -> 0.0, 2 -> 1.0, so the background's intensity lies between the
object's two halves.

The exhaustive procedure scores every segmentation a pixel-wise segmenter can make, that is
every assignment of the colours to ``k`` segments, under two objectives:

- colour clustering: the k-means objective, the squared deviation of each pixel's intensity
  from its segment's mean intensity, summed over all pixels of all instances;
- the cross-instance objective of CIRS: ``alpha1 * within - alpha2 * between``, where a
  segment's representation in one instance is its colour composition (the share of its pixels
  of each colour; zeros where the instance has none of it), ``within`` sums over segments the
  variance of that representation across the instances, and ``between`` is the variance between
  the segments' mean representations. In the networks a learned feature network takes the place
  of the colour composition; a fixed one lets every segmentation be scored exactly.

With ``k = 2`` colour clustering puts the background with one half of the object (``1122``
becomes ``11`` + ``22``), while the cross-instance objective keeps ``1122`` whole: its colour
composition is the same in every instance, whatever the number of copies.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from unseg.errors import ParameterError

OBJECT = (1, 1, 2, 2)
#: Intensity of each colour id: background 0, object halves 1 and 2.
INTENSITY = np.array([0.5, 0.0, 1.0])


def runs_1d(n: int, length: int = 16, *, random_state: int | None = 0
            ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``n`` instances of ``length`` pixels holding 1 to 3 copies of ``1122`` on background 0.

    Returns
    -------
    instances : (n, length) int64 colour ids
    masks : (n, length) int64, 1 on the object's pixels, 0 on the background
    """
    if length < 3 * len(OBJECT):
        raise ParameterError(f"length must be >= {3 * len(OBJECT)} to hold 3 objects; "
                             f"got {length}.")
    if n < 1:
        raise ParameterError(f"n must be >= 1, got {n}.")
    rng = np.random.default_rng(random_state)
    slots = np.arange(0, length - len(OBJECT) + 1, len(OBJECT))
    instances = np.zeros((n, length), dtype=np.int64)
    for row in instances:
        for start in rng.choice(slots, size=int(rng.integers(1, 4)), replace=False):
            row[start : start + len(OBJECT)] = OBJECT
    return instances, (instances > 0).astype(np.int64)


@dataclass(frozen=True)
class Scored:
    """One segmentation: the segment of each colour and its two objective values."""

    #: Segment id of colour 0, 1, 2, ...
    assignment: tuple[int, ...]
    cross_instance: float
    within: float
    between: float
    colour_sse: float

    def show(self, instance: NDArray[np.integer]) -> str:
        """The instance's segment ids as a string, for example ``0011110000111100``."""
        return "".join(str(self.assignment[c]) for c in instance)


def _composition(instances: NDArray[np.int64], members: NDArray[np.bool_], n_colours: int
                 ) -> NDArray[np.float64]:
    """(n, n_colours): each instance's share of each colour among a segment's pixels."""
    counts = np.stack([(instances == c).sum(1) for c in range(n_colours)], 1) * members[None]
    total = counts.sum(1, keepdims=True)
    return np.divide(counts, total, out=np.zeros(counts.shape), where=total > 0)


def exhaustive(instances: NDArray[np.integer], k: int = 2, *, alpha1: float = 1.0,
               alpha2: float = 1.0, intensity: NDArray[np.floating] = INTENSITY
               ) -> list[Scored]:
    """Score every assignment of the colours to ``k`` non-empty segments (each partition once).

    Returns the segmentations sorted by the cross-instance objective, lowest (best) first.
    """
    ids: NDArray[np.int64] = np.asarray(instances, dtype=np.int64)
    n_colours = len(intensity)
    if not 2 <= k <= n_colours:
        raise ParameterError(f"k must be between 2 and {n_colours}, got {k}.")
    values = np.asarray(intensity, dtype=np.float64)[ids]
    rows = []
    for assignment in itertools.product(range(k), repeat=n_colours):
        # one representative per partition: segment ids appear in order of first use
        firsts = [assignment.index(s) for s in range(k) if s in assignment]
        if len(firsts) < k or firsts != sorted(firsts):
            continue
        segment_of = np.asarray(assignment)
        feats = [_composition(ids, segment_of == s, n_colours) for s in range(k)]
        within = float(sum(f.var(axis=0).sum() for f in feats))
        between = float(np.stack([f.mean(axis=0) for f in feats]).var(axis=0).sum())
        pixel_segment = segment_of[ids]
        sse = float(sum(((values[pixel_segment == s] - values[pixel_segment == s].mean()) ** 2)
                        .sum() for s in range(k) if (pixel_segment == s).any()))
        rows.append(Scored(tuple(int(a) for a in assignment), alpha1 * within - alpha2 * between,
                           within, between, sse))
    return sorted(rows, key=lambda r: (r.cross_instance, r.assignment))
