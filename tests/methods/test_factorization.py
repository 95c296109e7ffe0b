"""F-SEG and DFF on synthetic images with known regions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unseg import backbones, methods
from unseg.concepts import ConceptBank, fit_bank
from unseg.data.synthetic import he_tile, quadrants
from unseg.errors import UnsegError
from unseg.eval import ConfusionAccumulator
from unseg.eval.matching import match
from unseg.eval.metrics import iou_per_class, mean_iou
from unseg.factorize import upsample_argmax


@pytest.fixture(scope="module")
def tiles() -> list[tuple[np.ndarray, np.ndarray]]:
    """Quadrant images: four flat colours, the same four in every image, placed differently."""
    out = []
    for turns in range(3):
        image, mask = quadrants(128, random_state=0)
        out.append((np.rot90(image, turns).copy(), np.rot90(mask, turns).copy()))
    return out


def dataset_miou(labels: list[np.ndarray], masks: list[np.ndarray], how: str) -> float:
    """mIoU with ONE mapping of labels to classes for all images (dataset scope)."""
    total = ConfusionAccumulator()
    for pred, gt in zip(labels, masks, strict=True):
        total.update(pred, gt)
    return mean_iou(total.matrix, match(total.matrix, how))


@pytest.mark.parametrize("band", [1, 2, 16])
def test_upsample_argmax_matches_full_interpolation(band: int) -> None:
    scores = torch.rand(70, 5, 7, generator=torch.Generator().manual_seed(0))
    label, margin = upsample_argmax(scores, 8, band=band)
    full = F.interpolate(scores[None], size=(40, 56), mode="bilinear", align_corners=False)[0]
    top = full.topk(2, dim=0)
    assert torch.equal(label, top.indices[0])
    assert torch.allclose(margin, (top.values[0] - top.values[1]) / top.values[0], atol=1e-6)


def test_upsample_argmax_takes_the_first_channel_on_ties_and_one_channel_has_margin_one() -> None:
    scores = torch.ones(3, 2, 2)
    scores[2, 0, 0] = 2.0
    label, margin = upsample_argmax(scores, 4)
    assert label[0, 0] == 2 and label[-1, -1] == 0  # the far corner: channels 0 and 1 tie
    assert margin[-1, -1] == 0
    label, margin = upsample_argmax(scores[:1], 4)
    assert bool((label == 0).all()) and bool((margin == 1).all())


def test_fseg_labels_are_consistent_across_images(tiles) -> None:
    images, masks = [t[0] for t in tiles], [t[1] for t in tiles]
    segmenter = methods.create("fseg", k=4, tile_size=32)
    labels = segmenter.fit(images).predict_batch(images)
    for lab, image in zip(labels, images, strict=True):
        assert lab.shape == image.shape[:2] and lab.max() < 4
    # one-to-one matching over all images at once: only consistent labels score high
    assert dataset_miou(labels, masks, "hungarian") > 0.8


def he_ious(labels: list[np.ndarray], masks: list[np.ndarray]) -> np.ndarray:
    """Per-class IoU (glass, stroma, nuclei) under one Hungarian matching for all images."""
    total = ConfusionAccumulator()
    for pred, gt in zip(labels, masks, strict=True):
        total.update(pred, gt)
    return iou_per_class(total.matrix, match(total.matrix, "hungarian"))


def test_fseg_cosine_finds_glass_and_stroma_in_every_tile() -> None:
    tiles = [he_tile(128, random_state=s) for s in range(3)]
    images, masks = [t[0] for t in tiles], [t[1] for t in tiles]
    segmenter = methods.create("fseg", k=3, assign="cosine", n_concepts=3, tile_size=32)
    glass, stroma, _ = he_ious(segmenter.fit(images).predict_batch(images), masks)
    assert glass > 0.8 and stroma > 0.6


def test_fseg_confidence_is_a_margin(tiles) -> None:
    image, mask = tiles[0]
    segmenter = methods.create("fseg", k=4, tile_size=32).fit([t[0] for t in tiles])
    labels, confidence = segmenter.predict_with_confidence(image)
    assert np.array_equal(labels, segmenter.predict(image))
    assert confidence.shape == image.shape[:2] and confidence.dtype == np.float32
    assert 0 <= confidence.min() and confidence.max() <= 1
    # inside a quadrant one concept wins clearly; on the borders between quadrants it does not
    inner = confidence[16:48, 16:48].mean()
    border = confidence[60:68, :].mean()
    assert inner > border + 0.2


def test_a_saved_bank_gives_the_labels_of_the_bank_fitted_in_place(tiles, tmp_path: Path) -> None:
    images = [t[0] for t in tiles]
    in_place = methods.create("fseg", k=4, tile_size=32).fit(images)
    path = in_place.bank_.save(tmp_path / "bank.npz")
    from_file = methods.create("fseg", k=4, concepts=str(path)).fit([])
    assert all(np.array_equal(in_place.predict(im), from_file.predict(im)) for im in images)


def test_a_bank_of_another_backbone_is_refused(tmp_path: Path) -> None:
    other = ConceptBank(centres={4: np.ones((4, 384), np.float32)}, backbone="dino")
    path = other.save(tmp_path / "dino.npz")
    with pytest.raises(UnsegError, match=r"dino.npz holds 384-dimensional concepts"):
        methods.create("fseg", k=4, concepts=str(path)).fit([])


def test_a_bank_without_the_size_asked_for_says_how_to_fit_it(tiles, tmp_path: Path) -> None:
    bank = fit_bank(backbones.create("default"), [tiles[0][0]], ks=(4,), tile_size=32)
    path = bank.save(tmp_path / "bank.npz")
    with pytest.raises(UnsegError, match=r"--k 8"):
        methods.create("fseg", k=8, concepts=str(path)).fit([])


def test_dff_finds_glass_and_stroma_in_each_tile() -> None:
    segmenter = methods.create("dff", k=3)
    for seed in range(3):
        image, mask = he_tile(128, random_state=seed)
        glass, stroma, _ = he_ious([segmenter.predict(image)], [mask])
        assert glass > 0.8 and stroma > 0.6


def test_fseg_cosine_labels_pixels_by_the_argmax_of_the_raw_w(monkeypatch) -> None:
    # Two factors; the second's row of H is 10 times longer. The raw W's argmax gives pixel 0
    # to factor 0; scaling H's rows to unit norm and moving the norms into W gives it to 1.
    w = torch.tensor([[[2.0, 1.0], [1.0, 3.0], [6.0, 0.5]]])  # (1, 3 pixels, 2 factors)
    h = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 10.0, 0.0]]])  # (1, 2 factors, 3 channels)
    centres = np.array([[0.0, 1.0, 0.1], [1.0, 0.1, 0.0]], np.float32)  # factor 0 -> centre 1

    def constructed(x, n, **kwargs):
        assert n == 2
        return w.clone(), h.clone()

    monkeypatch.setattr("unseg.factorize.nmf", constructed)
    x = torch.ones(1, 3, 3)
    expected = {"cosine": [1, 0, 1], "cosine-rescaled": [0, 0, 1]}
    for assign, labels in expected.items():
        segmenter = methods.create("fseg", k=2, assign=assign, n_concepts=2)
        segmenter.bank_ = ConceptBank(centres={2: centres}, backbone="constructed")
        memberships, lookup = segmenter._factor(x)
        assert lookup.tolist() == [[1, 0]]
        if assign == "cosine":
            assert torch.equal(memberships, w)  # W as NMF gave it
        assert lookup[0][memberships[0].argmax(dim=1)].tolist() == labels, assign
    assert methods.create("fseg").get_params()["n_concepts"] == 20


def test_the_free_factors_do_not_depend_on_the_thread_count(shared_data: Path) -> None:
    # 20 factors of a real H&E patch: in float32 a third or more of the pixels took another
    # factor with 1 thread than with 2
    from unseg.io import read_image
    from unseg.methods.factorization import free_factors

    image = read_image(shared_data / "wsss4luad-val" / "img" / "00.png")
    x = methods.create("fseg", k=4)._features([image])[0]
    threads = torch.get_num_threads()
    found = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            found.append(free_factors(x, 20, 200, 0, rescale=False))
    finally:
        torch.set_num_threads(threads)
    assert found[0][0].dtype == x.dtype
    assert torch.equal(found[0][0].argmax(2), found[1][0].argmax(2))
    torch.testing.assert_close(found[0][1], found[1][1], rtol=1e-5, atol=1e-6)
