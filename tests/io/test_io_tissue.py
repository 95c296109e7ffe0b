from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from unseg.data.synthetic import synthetic_slide_truth
from unseg.errors import ParameterError
from unseg.io import detect_tissue, open_slide, tissue_mask

pytest.importorskip("tiffslide")

WIDTH, HEIGHT = 1500, 1100  # SLIDE_SIZE of the synthetic_slide fixture
GLASS = (240, 240, 240)
PINK = (230, 150, 190)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def _noisy(image: np.ndarray, sigma: float = 3.0, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, sigma, image.shape)
    return np.clip(np.round(image + noise), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("flavour", ["tiff", "svs"])
@pytest.mark.parametrize("max_size", [512, 1024])
def test_detect_tissue_matches_truth(synthetic_slide, flavour: str, max_size: int) -> None:
    with open_slide(synthetic_slide(flavour)) as slide:
        mask, (scale_x, scale_y) = detect_tissue(slide, max_size=max_size)
    assert mask.dtype == bool and max(mask.shape) == max_size
    assert scale_x == pytest.approx(WIDTH / mask.shape[1])
    assert scale_y == pytest.approx(HEIGHT / mask.shape[0])
    truth = synthetic_slide_truth(WIDTH, HEIGHT, scale_x) > 0
    truth = truth[: mask.shape[0], : mask.shape[1]]  # ceil vs round of the last row/column
    assert truth.shape == mask.shape
    assert _iou(mask, truth) > 0.9
    assert 0.4 < mask.mean() < 0.6


def test_blank_white_image_has_no_tissue() -> None:
    white = np.full((300, 400, 3), 255, dtype=np.uint8)
    assert not tissue_mask(white).any()


@pytest.mark.parametrize("colour", [GLASS, (236, 238, 242), (245, 240, 228)])
def test_blank_noisy_or_tinted_glass_has_no_tissue(colour: tuple[int, int, int]) -> None:
    glass = _noisy(np.full((300, 400, 3), colour, dtype=float), sigma=4.0)
    assert not tissue_mask(glass).any()


def test_tissue_on_glass_with_specks_and_holes() -> None:
    image = np.full((400, 400, 3), GLASS, dtype=float)
    image[100:300, 100:300] = PINK  # tissue, 25% of the image
    image[190:200, 190:200] = GLASS  # a small hole: filled
    image[120:200, 220:290] = GLASS  # a large hole (3.5% of the image): kept
    image[20:22, 20:22] = PINK  # a speck: removed
    mask = tissue_mask(_noisy(image))
    assert mask[150, 150] and mask[195, 195]
    assert not mask[160, 250]
    assert not mask[21, 21] and not mask[5, 5]
    expected = np.zeros((400, 400), dtype=bool)
    expected[100:300, 100:300] = True
    expected[120:200, 220:290] = False
    assert _iou(mask, expected) > 0.97


def test_tissue_filling_the_image() -> None:
    image = np.full((200, 200, 3), PINK, dtype=float)
    image[:, 100:] = (150, 100, 180)  # two tissue classes, no glass
    assert tissue_mask(_noisy(image)).mean() > 0.99


def test_area_parameters_are_fractions_of_the_image() -> None:
    image = np.full((200, 200, 3), GLASS, dtype=float)
    image[50:60, 50:60] = PINK  # 0.25% of the image
    image = _noisy(image)
    assert tissue_mask(image, min_area=0.002).sum() == 100
    assert not tissue_mask(image, min_area=0.003).any()


def test_bad_input() -> None:
    with pytest.raises(ParameterError, match="RGB"):
        tissue_mask(np.zeros((10, 10), dtype=np.uint8))
    with pytest.raises(ParameterError, match="min_area"):
        tissue_mask(np.zeros((10, 10, 3), dtype=np.uint8), min_area=2)


SHARED_SLIDES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "slides"
REAL_SLIDE = SHARED_SLIDES / "cmu_small_region.svs"


@pytest.mark.skipif(not REAL_SLIDE.exists(), reason=f"{REAL_SLIDE} not found")
def test_real_slide_tissue() -> None:
    with open_slide(REAL_SLIDE) as slide:
        mask, scale = detect_tissue(slide, max_size=512)
    assert mask.shape == (512, 383) and scale == pytest.approx((5.8, 5.8), rel=1e-2)
    assert 0.2 < mask.mean() < 0.6  # a strip of skin on glass
    assert not mask[250:, :60].any()  # the lower left is glass
    assert mask[400:500, 100:300].mean() > 0.8  # the dermis at the bottom is tissue
