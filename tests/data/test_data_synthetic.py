from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from unseg.data import discover, load_sample, synthetic
from unseg.errors import ParameterError

GENERATORS = {
    "quadrants": (synthetic.quadrants, 64, {0, 1, 2, 3}),
    "blobs": (synthetic.blobs, 128, {0, 1}),
    "he_tile": (synthetic.he_tile, 256, {0, 1, 2}),
}


@pytest.mark.parametrize("name", GENERATORS)
def test_shapes_dtypes_and_classes(name: str) -> None:
    generate, size, classes = GENERATORS[name]
    image, mask = generate()
    assert image.shape == (size, size, 3) and image.dtype == np.uint8
    assert mask.shape == (size, size) and mask.dtype == np.int32
    assert set(np.unique(mask)) == classes


@pytest.mark.parametrize("name", GENERATORS)
def test_same_seed_same_output_different_seed_different(name: str) -> None:
    generate = GENERATORS[name][0]
    image, mask = generate(random_state=5)
    again_image, again_mask = generate(random_state=5)
    np.testing.assert_array_equal(image, again_image)
    np.testing.assert_array_equal(mask, again_mask)
    assert not np.array_equal(image, generate(random_state=6)[0])


def test_quadrants_layout() -> None:
    image, mask = synthetic.quadrants(size=10, noise=0.0)
    assert mask[0, 0] == 0 and mask[0, 9] == 1 and mask[9, 0] == 2 and mask[9, 9] == 3
    assert len(np.unique(image.reshape(-1, 3), axis=0)) == 4


def test_blobs_are_separate_and_dark() -> None:
    image, mask = synthetic.blobs(n_blobs=5, random_state=3)
    assert ndimage.label(mask)[1] == 5
    gray = image.mean(axis=2)
    assert gray[mask == 1].mean() < gray[mask == 0].mean() - 80
    with pytest.raises(ParameterError, match="cannot fit"):
        synthetic.blobs(size=16, n_blobs=50)


def test_he_tile_colours() -> None:
    image, mask = synthetic.he_tile(random_state=1)
    expected = {0: (240, 240, 240), 1: (230, 150, 190), 2: (90, 60, 150)}
    for label, rgb in expected.items():
        mean = image[mask == label].mean(axis=0)
        assert np.abs(mean - rgb).max() < 25, (label, mean)
    assert (mask == 2).mean() > 0.01


@pytest.mark.parametrize("seed", range(4))
def test_he_tile_glass_is_a_quarter_and_free_of_nuclei(seed: int) -> None:
    _, mask = synthetic.he_tile(size=32, random_state=seed)  # small: nuclei reach the glass
    assert (mask == 0).sum() == 32 * 32 // 4


def test_bad_parameters() -> None:
    with pytest.raises(ParameterError, match="size"):
        synthetic.he_tile(size=8)
    with pytest.raises(ParameterError, match="noise"):
        synthetic.quadrants(noise=-1.0)
    with pytest.raises(ParameterError, match="unknown kind"):
        synthetic.write_dataset("unused", kind="nope")


def test_write_dataset_reads_back(tmp_path: Path) -> None:
    out = synthetic.write_dataset(tmp_path / "synth", n=3, kind="blobs", size=48, random_state=2)
    samples = discover([out])
    assert [s.id for s in samples] == ["synthetic-00", "synthetic-01", "synthetic-02"]
    for sample in samples:
        image, mask = load_sample(sample)
        assert image.shape == (48, 48, 3) and mask is not None and set(np.unique(mask)) == {0, 1}
    first_image, _ = load_sample(samples[0])
    again = synthetic.write_dataset(tmp_path / "again", n=3, kind="blobs", size=48, random_state=2)
    np.testing.assert_array_equal(load_sample(discover([again])[0])[0], first_image)
    assert sorted(p.name for p in (out / "img").iterdir()) == [
        "synthetic-00.png",
        "synthetic-01.png",
        "synthetic-02.png",
    ]
