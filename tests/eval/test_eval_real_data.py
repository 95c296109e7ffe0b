from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from unseg.eval import MATCH_METHODS, evaluate


@cache
def _read_mask(path: Path) -> np.ndarray:
    return np.array(PIL.Image.open(path))


def _self_pairs(folder: Path) -> tuple[list[Path], Callable[[Path], tuple[np.ndarray, np.ndarray]]]:
    masks = sorted((folder / "mask").glob("*.png"))
    if not masks:
        pytest.skip(f"no masks in {folder / 'mask'}")

    def load(path: Path) -> tuple[np.ndarray, np.ndarray]:
        mask = _read_mask(path)
        return mask, mask

    return masks, load


@pytest.mark.parametrize("method", [m for m in MATCH_METHODS if m != "foreground"])
def test_wsss4luad_masks_against_themselves(shared_data, method):
    masks, load = _self_pairs(shared_data / "wsss4luad-val")
    result = evaluate(masks, load, match=method)
    assert result.n_images == len(masks) and not result.failures
    assert result.classes == [0, 1, 2, 3]
    assert result.miou == 1.0 and result.pixel_accuracy == 1.0
    assert result.miou_image_mean == 1.0
    assert result.mapping == [0, 1, 2, 3]
    assert result.binary is None


@pytest.mark.parametrize("method", ["hungarian", "foreground"])
def test_drive_masks_against_themselves(shared_data, method):
    masks, load = _self_pairs(shared_data / "drive-train")
    result = evaluate(masks, load, match=method, scope="image")
    assert result.n_images == len(masks) and not result.failures
    assert result.binary["dice"] == 1.0
    assert result.binary["hausdorff"] == 0.0
    assert result.binary["hausdorff95"] == 0.0
    assert result.binary["rmse"] == 0.0
    assert result.binary["ssim"] == pytest.approx(1.0)
    assert result.miou == 1.0
