from __future__ import annotations

from pathlib import Path

import numpy as np

from unseg.data import discover, load_sample


def test_wsss4luad_validation_set(shared_data: Path) -> None:
    samples = discover([shared_data / "wsss4luad-val"])
    assert len(samples) == 31
    assert all(sample.mask is not None for sample in samples)
    for sample in samples:
        image, mask = load_sample(sample)
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
        assert mask is not None and mask.shape == image.shape[:2]
        assert set(np.unique(mask)) <= {0, 1, 2, 3, 255}
