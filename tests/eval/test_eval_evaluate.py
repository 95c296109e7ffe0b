from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from unseg.errors import InputError, ParameterError, UnsegError
from unseg.eval import (
    BINARY_METRICS,
    EvaluationResult,
    class_counts,
    confusion_matrix,
    evaluate,
    match,
)

# Ground truth: left half class 0, right half class 1.
HALVES = np.repeat([[0, 0, 1, 1]], 4, axis=0)


def _loader(pairs: dict):
    def load(image_id):
        value = pairs[image_id]
        if isinstance(value, Exception):
            raise value
        return value

    return load


def _evaluate(pairs: dict, **kwargs) -> EvaluationResult:
    return evaluate(list(pairs), _loader(pairs), **kwargs)


# Image "b" uses the cluster ids of image "a" swapped: perfect per image, not across images.
PERMUTED = {"a": (HALVES, HALVES), "b": (1 - HALVES, HALVES)}


def test_image_scope_is_perfect_on_permuted_ids():
    result = _evaluate(PERMUTED, scope="image")
    assert result.miou == 1.0 and result.pixel_accuracy == 1.0
    assert result.miou_image_mean == 1.0
    assert result.mapping is None
    assert result.binary["dice"] == 1.0 and result.binary["hausdorff"] == 0.0


def test_dataset_scope_is_not_perfect_on_permuted_ids():
    result = _evaluate(PERMUTED, scope="dataset")
    # pooled confusion [[8, 8], [8, 8]]: one image right, the other all wrong
    assert result.pixel_accuracy == pytest.approx(0.5)
    assert result.miou == pytest.approx(1 / 3)
    assert sorted(entry["pixel_accuracy"] for entry in result.per_image) == [0.0, 1.0]
    assert result.miou_image_mean == pytest.approx(0.5)
    assert sorted(result.mapping) == [0, 1]
    assert result.binary["dice"] == pytest.approx(0.5)


@pytest.mark.parametrize("method", ["hungarian", "majority", "majority-normalized"])
def test_pooled_scores_equal_the_sum_of_per_image_counts(method):
    rng = np.random.default_rng(1)
    pairs = {}
    for i in range(3):
        gt = rng.integers(0, 3 + i, (10, 12))
        pairs[i] = (np.where(rng.random(gt.shape) < 0.7, gt, rng.integers(0, 5, gt.shape)), gt)
    result = _evaluate(pairs, match=method, scope="image")
    n_classes = len(result.per_class)
    tp = np.zeros(n_classes, dtype=int)
    fp, fn = tp.copy(), tp.copy()
    for pred, gt in pairs.values():
        own = confusion_matrix(pred, gt)
        counts = class_counts(own, match(own, method))
        for total, part in zip((tp, fp, fn), counts, strict=True):
            total[: part.size] += part
    for c, row in result.per_class.items():
        assert row["iou"] == pytest.approx(tp[c] / (tp[c] + fp[c] + fn[c]))
        assert row["f1"] == pytest.approx(2 * tp[c] / (2 * tp[c] + fp[c] + fn[c]))
        assert row["pixels"] == tp[c] + fn[c]
    assert result.pixel_accuracy == pytest.approx(tp.sum() / (tp.sum() + fn.sum()))


def test_dataset_scope_hand_computed_with_ignore_and_absent_class():
    gt_a = np.array([[0, 0, 0], [2, 2, 2], [255, 2, 0]])
    pred_a = np.array([[0, 0, 1], [1, 1, 1], [7, 1, 0]])
    result = _evaluate({"a": (pred_a, gt_a)}, match="majority")
    # confusion [[3, 0, 0], [1, 0, 4]]: cluster 0 -> 0, cluster 1 -> 2; class 1 is absent
    assert result.mapping == [0, 2]
    assert result.classes == [0, 2]
    assert result.n_clusters == 2
    assert math.isnan(result.per_class[1]["iou"]) and result.per_class[1]["pixels"] == 0
    assert result.per_class[0]["iou"] == pytest.approx(3 / 4)
    assert result.per_class[2]["iou"] == pytest.approx(4 / 5)
    assert result.miou == pytest.approx((3 / 4 + 4 / 5) / 2)
    assert result.pixel_accuracy == pytest.approx(7 / 8)
    assert result.binary is None  # three classes: not a binary task
    assert "dice" not in result.per_image[0]


def test_failures_are_recorded_and_skipped():
    pairs = {
        "good": (HALVES, HALVES),
        "missing": InputError("pred/missing.png", "file not found"),
        "wrong-size": (HALVES[:, :3], HALVES),
    }
    result = _evaluate(pairs)
    assert result.n_images == 1 and result.miou == 1.0
    assert [image_id for image_id, _ in result.failures] == ["missing", "wrong-size"]
    assert "pred/missing.png: file not found" in result.failures[0][1]
    assert "(4, 3)" in result.failures[1][1]
    assert "missing" in result.to_markdown()


def test_other_exceptions_are_not_swallowed():
    with pytest.raises(ZeroDivisionError):
        _evaluate({"x": ZeroDivisionError()})


def test_nothing_evaluated_raises_listing_the_failures():
    pairs = {"one": InputError("one.png", "corrupt"), "two": InputError("two.png", "corrupt")}
    with pytest.raises(UnsegError, match="nothing could be evaluated") as info:
        _evaluate(pairs)
    assert "one.png: corrupt" in str(info.value) and "two.png: corrupt" in str(info.value)
    with pytest.raises(UnsegError, match="nothing could be evaluated"):
        evaluate([], _loader({}))


@pytest.mark.parametrize(
    ("kwargs", "name"), [({"match": "best"}, "match"), ({"scope": "x"}, "scope")]
)
def test_bad_parameters_raise(kwargs, name):
    with pytest.raises(ParameterError, match=f"{name} must be one of"):
        _evaluate(PERMUTED, **kwargs)


def test_binary_metrics_ignore_pixels_set_to_background():
    gt = HALVES.copy()
    gt[0, 0] = 255  # predicted foreground there, but ignored
    pred = HALVES.copy()
    pred[0, 0] = 1
    result = _evaluate({"a": (pred, gt)})
    assert set(result.binary) == set(BINARY_METRICS)
    assert result.per_image[0]["dice"] == 1.0
    assert result.per_image[0]["hausdorff"] == 0.0
    assert result.per_image[0]["rmse"] == 0.0


def test_binary_metrics_use_the_mapping():
    pred = np.array([[5, 5, 2, 2]] * 4)  # cluster 2 is the foreground, cluster 5 background
    result = _evaluate({"a": (pred, HALVES)})
    assert result.mapping == [-1, -1, 1, -1, -1, 0]
    assert result.binary["dice"] == 1.0 and result.miou == 1.0


def test_second_pass_failure_is_recorded():
    calls = []

    def load(image_id):
        calls.append(image_id)
        if image_id == "flaky" and calls.count("flaky") == 2:
            raise InputError("flaky.png", "vanished")
        return HALVES, HALVES

    result = evaluate(["ok", "flaky"], load)
    assert result.n_images == 2
    assert result.failures[0][0] == "flaky" and "vanished" in result.failures[0][1]
    assert "dice" not in result.per_image[1]
    assert result.binary["dice"] == 1.0


def test_to_dict_is_json_serialisable():
    gt = np.array([[0, 0, 2, 2]] * 4)  # class 1 absent: NaN scores
    pairs = {
        Path("a.png"): (gt, gt),
        "b": InputError("b.png", "corrupt"),
    }
    result = _evaluate(pairs)
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["per_class"]["1"]["iou"] is None
    assert data["per_image"][0]["id"] == "a.png"
    assert data["failures"][0] == ["b", "b.png: corrupt"]
    assert data["miou"] == 1.0 and data["mapping"] == [0, 1, 2]  # empty cluster 1 assigned
    binary = _evaluate(PERMUTED, scope="image").to_dict()
    json.dumps(binary, allow_nan=False)
    assert binary["binary"]["dice"] == 1.0


def test_to_markdown():
    text = _evaluate(PERMUTED, scope="image").to_markdown()
    first = text.splitlines()[0]
    assert "`hungarian`" in first and "`image`" in first
    assert "pooled over the dataset; per-image mean" in text
    assert "| class | IoU | F1 | pixels |" in text and "| 1 | 1.0000 | 1.0000 | 16 |" in text
    assert "| hausdorff95 | 0.0000 |" in text
    multi = _evaluate({"a": (np.array([[0, 1, 2]]), np.array([[0, 0, 2]]))}).to_markdown()
    assert "hausdorff" not in multi and "| 1 | n/a | n/a | 0 |" in multi
