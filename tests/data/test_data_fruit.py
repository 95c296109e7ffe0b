"""The sky-and-fruit scenes (both styles) and `unseg data synthetic`."""

from __future__ import annotations

import numpy as np
import pytest

from unseg.cli.main import main
from unseg.data.synthetic import APPLE, BLUEBERRY, LEMON, SKY, sky_and_fruit
from unseg.data.synthetic.fruit import pasted_fruit
from unseg.errors import ParameterError
from unseg.io import read_image, read_label_map


@pytest.fixture(scope="module")
def scenes() -> list[tuple[np.ndarray, np.ndarray]]:
    return [sky_and_fruit(64, random_state=i) for i in range(60)]


def test_same_seed_same_scene_and_shapes(scenes):
    image, mask = sky_and_fruit(64, random_state=0)
    assert np.array_equal(image, scenes[0][0]) and np.array_equal(mask, scenes[0][1])
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert mask.shape == (64, 64) and mask.dtype == np.int32
    assert not np.array_equal(image, scenes[1][0])


def test_every_class_appears_and_objects_occlude_the_sky(scenes):
    masks = np.stack([m for _, m in scenes])
    assert set(np.unique(masks)) == {SKY, LEMON, APPLE, BLUEBERRY}
    assert all((m == SKY).any() and (m != SKY).any() for _, m in scenes[:20])


def test_mask_matches_the_colours(scenes):
    pixels = np.concatenate([im.reshape(-1, 3) for im, _ in scenes]).astype(float)
    labels = np.concatenate([m.ravel() for _, m in scenes])
    mean = {c: pixels[labels == c].mean(0) for c in (SKY, LEMON, APPLE, BLUEBERRY)}
    r, g, b = mean[LEMON]
    assert r > b + 100 and g > b + 80  # yellow
    assert mean[APPLE][0] > mean[APPLE][2] + 60  # red to green, never blue
    assert mean[BLUEBERRY].sum() < 300 and mean[BLUEBERRY][2] > mean[BLUEBERRY][0] + 40  # dark blue
    assert mean[SKY][2] > mean[SKY][0]  # blue
    # the sky's own colours vary a lot (clouds, bands): more than any fruit's
    spread = {c: pixels[labels == c].std(0).mean() for c in mean}
    assert spread[SKY] > 30 and spread[SKY] > spread[LEMON]


def test_bad_sizes_are_errors():
    with pytest.raises(ParameterError, match="size"):
        sky_and_fruit(8)
    with pytest.raises(ParameterError, match="max_objects"):
        sky_and_fruit(64, max_objects=0)


@pytest.fixture(scope="module")
def pasted() -> list[tuple[np.ndarray, np.ndarray]]:
    return [pasted_fruit(64, random_state=i) for i in range(30)]


def test_thesis_style_pastes_the_same_sprites_on_the_same_sky(pasted):
    image, mask = pasted_fruit(64, random_state=0)
    assert np.array_equal(image, pasted[0][0]) and np.array_equal(mask, pasted[0][1])
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8 and mask.dtype == np.int32
    # one sky: wherever two scenes both show sky, the pixels are the same
    a, b = pasted[1], pasted[2]
    both = (a[1] == SKY) & (b[1] == SKY)
    assert both.mean() > 0.5 and np.array_equal(a[0][both], b[0][both])
    # every fruit in every scene (occlusion may hide part of one, rarely all of it)
    assert np.mean([set(np.unique(m)) == {SKY, LEMON, APPLE, BLUEBERRY} for _, m in pasted]) > 0.9
    # rotated, not scaled: each fruit's colours are the sprite's own and its area nearly fixed
    for kind in (LEMON, APPLE, BLUEBERRY):
        palettes = [{tuple(c) for c in im[m == kind]} for im, m in pasted[:10]]
        common = set.union(*palettes)
        assert all(len(p & palettes[0]) > 0.5 * len(p) for p in palettes[1:])
        assert len(common) < 3 * len(palettes[0])
    positions = {tuple(np.argwhere(m == LEMON).mean(0).round()) for _, m in pasted}
    assert len(positions) > 20  # random positions


def test_thesis_style_sky_varies_in_colour_more_than_any_fruit(pasted):
    pixels = np.concatenate([im.reshape(-1, 3) for im, _ in pasted]).astype(float)
    labels = np.concatenate([m.ravel() for _, m in pasted])
    spread = {c: pixels[labels == c].std(0).mean() for c in (SKY, LEMON, APPLE, BLUEBERRY)}
    assert spread[SKY] > 40 and all(spread[SKY] > spread[c] for c in (LEMON, APPLE, BLUEBERRY))
    white = (pixels[labels == SKY].min(1) > 200).mean()  # clouds
    assert 0.2 < white < 0.6


def test_command_writes_seeded_splits(tmp_path, capsys):
    args = ["data", "synthetic", "--n-train", "5", "--n-val", "2", "--n-test", "3", "--seed", "4"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    for split, n in (("train", 5), ("val", 2), ("test", 3)):
        images = sorted((tmp_path / "a" / split / "img").glob("*.png"))
        assert len(images) == n
        assert len(list((tmp_path / "a" / split / "mask").glob("*.png"))) == n
    first = tmp_path / "a" / "train" / "img" / "synthetic-00.png"
    again = tmp_path / "b" / "train" / "img" / "synthetic-00.png"
    assert np.array_equal(read_image(first), read_image(again))
    assert read_label_map(tmp_path / "a" / "test" / "mask" / "synthetic-00.png").max() <= 3
    # the splits hold different scenes
    assert not np.array_equal(read_image(first),
                              read_image(tmp_path / "a" / "val" / "img" / "synthetic-00.png"))
    assert main(["data", "synthetic", "--out", str(tmp_path / "c"), "--n-val", "-1"]) == 2


def test_command_writes_the_thesis_style(tmp_path):
    out = tmp_path / "thesis"
    assert main(["data", "synthetic", "--style", "thesis", "--out", str(out), "--n-train", "2",
                 "--n-val", "0", "--n-test", "1"]) == 0
    image = read_image(out / "train" / "img" / "synthetic-00.png")
    mask = read_label_map(out / "train" / "mask" / "synthetic-00.png")
    rng = np.random.default_rng([0, 0])  # the seed of the first split
    expected = pasted_fruit(64, random_state=int(rng.integers(0, 2**31)))
    assert np.array_equal(image, expected[0]) and np.array_equal(mask, expected[1])
    assert not (out / "val").exists()
