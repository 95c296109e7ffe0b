"""The CIRS thesis's protocol: per image, the one-to-one mapping with the highest mIoU."""

from __future__ import annotations

import numpy as np
import pytest

from unseg.cli.main import main
from unseg.eval import evaluate, match
from unseg.io import write_label_map


def test_best_iou_maximises_the_iou_not_the_matched_pixels():
    confusion = np.array([[50, 0], [60, 5]])  # clusters x classes; class 1 has 5 pixels
    # matched pixels: 50 + 5 kept, 0 + 60 swapped, so pixel matching swaps
    assert match(confusion, "hungarian").tolist() == [1, 0]
    # IoU kept: 50/110 + 5/65 = 0.531; swapped: 0/55 + 60/115 = 0.522
    assert match(confusion, "best-iou").tolist() == [0, 1]
    # a cluster left over stays unmatched
    assert match(np.array([[5, 0], [0, 5], [1, 1]]), "best-iou").tolist() == [0, 1, -1]


def test_image_scope_mean_is_the_thesis_figure():
    rng = np.random.default_rng(0)
    gts = [rng.integers(0, 3, (8, 8)) for _ in range(4)]
    preds = [(g + i) % 3 for i, g in enumerate(gts)]  # each image permuted differently
    preds[3] = np.zeros((8, 8), int)  # one segment: one class matched, the others 0
    result = evaluate(range(4), lambda i: (preds[i], gts[i]), match="best-iou", scope="image")
    expected = np.mean([1, 1, 1, max((gts[3] == c).mean() for c in range(3)) / 3])
    assert result.miou_image_mean == pytest.approx(expected)
    assert "protocol of the CIRS thesis" in result.to_markdown()
    dataset = evaluate(range(4), lambda i: (preds[i], gts[i]), match="best-iou",
                       scope="dataset")
    assert dataset.miou < result.miou_image_mean  # one mapping cannot undo the permutations


def test_the_command_accepts_best_iou(tmp_path, capsys):
    gt = np.array([[0, 0, 1, 1]] * 4)
    write_label_map(tmp_path / "gt" / "a.png", gt)
    write_label_map(tmp_path / "pred" / "a.png", 1 - gt)
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                 "--match", "best-iou", "--scope", "image"]) == 0
    assert "mIoU 1.0000" in capsys.readouterr().out
