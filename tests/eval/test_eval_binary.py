from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist, directed_hausdorff
from scipy.spatial.distance import dice as scipy_dice_dissimilarity
from skimage.metrics import hausdorff_distance, structural_similarity

from unseg.errors import ParameterError
from unseg.eval import dice, ergas, hausdorff, hausdorff95, rmse, ssim

METRICS = (dice, hausdorff, hausdorff95, ssim, ergas, rmse)


def _random_masks(seed: int, shape=(23, 31)):
    rng = np.random.default_rng(seed)
    gt = rng.random(shape) < rng.uniform(0.05, 0.5)
    pred = gt ^ (rng.random(shape) < rng.uniform(0.01, 0.3))  # gt with flipped pixels
    return pred, gt


def _sewar_ergas():
    sewar = pytest.importorskip("sewar")
    if "ws" not in inspect.signature(sewar.full_ref.ergas).parameters:
        pytest.skip(
            "the reference is the sliding-window ERGAS of sewar <= 0.4.5; this sewar has the "
            "global formula. Install sewar==0.4.5 to compare."
        )
    return sewar.full_ref


@pytest.mark.parametrize("seed", range(8))
def test_hausdorff_matches_skimage_and_scipy(seed):
    pred, gt = _random_masks(seed)
    expected = hausdorff_distance(pred, gt)
    assert hausdorff(pred, gt) == pytest.approx(expected, rel=1e-12)
    p, g = np.argwhere(pred), np.argwhere(gt)
    symmetric = max(directed_hausdorff(p, g)[0], directed_hausdorff(g, p)[0])
    assert hausdorff(pred, gt) == pytest.approx(symmetric, rel=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_hausdorff95_matches_brute_force(seed):
    pred, gt = _random_masks(seed)
    distances = cdist(np.argwhere(pred), np.argwhere(gt))
    pooled = np.concatenate([distances.min(axis=1), distances.min(axis=0)])
    assert hausdorff95(pred, gt) == pytest.approx(np.percentile(pooled, 95), rel=1e-12)
    assert hausdorff95(pred, gt) <= hausdorff(pred, gt)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("shape", [(23, 31), (5, 9), (6, 6)])
def test_ssim_matches_skimage(seed, shape):
    pred, gt = _random_masks(seed, shape)
    window = 7 if min(shape) >= 7 else min(shape) - 1 + min(shape) % 2
    expected = structural_similarity(
        gt.astype(float), pred.astype(float), data_range=1.0, win_size=window
    )
    assert ssim(pred, gt) == pytest.approx(expected, rel=1e-12)
    assert ssim(pred.astype(np.uint8), gt.astype(np.int64)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_dice_matches_scipy(seed):
    pred, gt = _random_masks(seed)
    expected = 1 - scipy_dice_dissimilarity(pred.ravel(), gt.ravel())
    assert dice(pred, gt) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("shape", [(23, 31), (64, 48), (9, 12)])
def test_ergas_and_rmse_match_sewar(seed, shape):
    full_ref = _sewar_ergas()
    pred, gt = _random_masks(seed, shape)
    gt_f, pred_f = gt.astype(float), pred.astype(float)
    assert ergas(pred, gt) == pytest.approx(full_ref.ergas(gt_f, pred_f), rel=1e-12)
    assert rmse(pred, gt) == pytest.approx(full_ref.rmse(gt_f, pred_f), rel=1e-12)


def test_ergas_and_rmse_match_sewar_on_single_class_masks():
    full_ref = _sewar_ergas()
    ones, zeros = np.ones((16, 20)), np.zeros((16, 20))
    for pred, gt in [(zeros, ones), (ones, zeros), (ones, ones), (zeros, zeros)]:
        assert ergas(pred, gt) == pytest.approx(full_ref.ergas(gt, pred), rel=1e-12)
        assert rmse(pred, gt) == pytest.approx(full_ref.rmse(gt, pred), rel=1e-12)


def test_hand_computed_values():
    pred = np.zeros((6, 8), dtype=bool)
    gt = np.zeros((6, 8), dtype=bool)
    pred[0, 0] = True
    gt[3, 4] = True
    assert hausdorff(pred, gt) == 5.0
    assert hausdorff95(pred, gt) == 5.0
    assert dice(pred, gt) == 0.0
    assert rmse(pred, gt) == pytest.approx(math.sqrt(2 / 48))
    gt[0, 1] = True  # pooled distances: 1 (pred->gt), 1 and 5 (gt->pred)
    assert hausdorff(pred, gt) == 5.0
    assert hausdorff95(pred, gt) == pytest.approx(np.percentile([1, 1, 5], 95))
    assert dice(pred, gt) == 0.0
    pred[3, 4] = True
    assert dice(pred, gt) == pytest.approx(2 * 1 / (2 + 2))
    # all foreground vs none: local RMSE 1 over local mean 1/64 (sewar's extra division)
    assert ergas(np.zeros((16, 16)), np.ones((16, 16))) == pytest.approx(100 * 4 * 64)


def test_both_empty():
    empty = np.zeros((12, 10), dtype=bool)
    assert dice(empty, empty) == 1.0
    assert hausdorff(empty, empty) == 0.0
    assert hausdorff95(empty, empty) == 0.0
    assert ssim(empty, empty) == pytest.approx(1.0)
    assert ergas(empty, empty) == 0.0
    assert rmse(empty, empty) == 0.0


def test_both_full():
    full = np.ones((12, 10), dtype=bool)
    assert dice(full, full) == 1.0
    assert hausdorff(full, full) == 0.0
    assert hausdorff95(full, full) == 0.0
    assert ssim(full, full) == pytest.approx(1.0)
    assert ergas(full, full) == 0.0
    assert rmse(full, full) == 0.0


@pytest.mark.parametrize("empty_one", ["pred", "gt"])
def test_exactly_one_empty_gives_the_diagonal(empty_one):
    some = np.zeros((12, 10), dtype=bool)
    some[4:6, 2:5] = True
    empty = np.zeros_like(some)
    pred, gt = (empty, some) if empty_one == "pred" else (some, empty)
    diagonal = math.sqrt(12**2 + 10**2)
    assert dice(pred, gt) == 0.0
    assert hausdorff(pred, gt) == pytest.approx(diagonal)
    assert hausdorff95(pred, gt) == pytest.approx(diagonal)
    assert rmse(pred, gt) == pytest.approx(math.sqrt(6 / 120))
    assert ssim(pred, gt) < 1.0
    if empty_one == "gt":  # sewar's ERGAS is 0 wherever the local ground-truth mean is 0
        assert ergas(pred, gt) == 0.0
    else:
        assert ergas(pred, gt) > 0.0


def test_undefined_on_tiny_images():
    tiny = np.ones((2, 5), dtype=bool)
    assert math.isnan(ssim(tiny, tiny))
    assert math.isnan(ergas(np.ones((8, 30)), np.ones((8, 30))))
    assert not math.isnan(ergas(np.ones((9, 30)), np.ones((9, 30))))


@pytest.mark.parametrize("metric", METRICS)
def test_bad_masks_raise(metric):
    mask = np.zeros((4, 4), dtype=int)
    with pytest.raises(ParameterError, match="only 0 and 1"):
        metric(mask + 2, mask)
    with pytest.raises(ParameterError, match=r"pred \(4, 4\) and gt \(4, 5\)"):
        metric(mask, np.zeros((4, 5)))
