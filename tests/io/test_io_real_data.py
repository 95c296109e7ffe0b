from __future__ import annotations

from pathlib import Path

import numpy as np

from unseg.io import read_image, read_label_map


def test_cpm_nuclei_masks_are_uint16_instance_ids(shared_data: Path) -> None:
    masks = sorted((shared_data / "cpm-nuclei-dev" / "mask").glob("*.png"))
    assert len(masks) == 5
    for path in masks:
        labels = read_label_map(path)
        assert labels.ndim == 2 and labels.dtype == np.int32
        assert 0 <= labels.min() and labels.max() <= 65535
    assert max(int(read_label_map(path).max()) for path in masks) > 255  # needs 16 bits


def test_mni_brain_images_are_grayscale(shared_data: Path) -> None:
    images = sorted((shared_data / "mni-brain-dev" / "img").glob("*.png"))
    assert images
    for path in images:
        image = read_image(path)
        assert image.ndim == 2 and image.dtype == np.uint8


def test_he_example_jpeg(shared_data: Path) -> None:
    image = read_image(shared_data / "he-examples" / "fseg-repo-example.jpg")
    assert image.shape == (975, 1270, 3) and image.dtype == np.uint8
