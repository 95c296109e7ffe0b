from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from unseg.errors import ParameterError
from unseg.io import colourize, overlay, palette, read_image, write_overlay


def test_palette_is_distinct_and_deterministic() -> None:
    colours = palette(5000)
    assert colours.shape == (5000, 3) and colours.dtype == np.uint8
    assert len(np.unique(colours, axis=0)) == 5000
    np.testing.assert_array_equal(palette(30), colours[:30])
    assert palette(0).shape == (0, 3)


def test_first_colours_are_well_separated() -> None:
    colours = palette(64).astype(float)
    distances = np.linalg.norm(colours[:, None] - colours[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    assert distances.min() > 20


def test_colorize_uses_the_palette() -> None:
    labels = np.array([[0, 1], [2, 25]])
    rgb = colourize(labels)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, palette(26)[labels])
    with pytest.raises(ParameterError, match=">= 0"):
        colourize(np.array([[-1, 0]]))


def test_overlay_blends() -> None:
    image = np.full((2, 3, 3), 200, dtype=np.uint8)
    labels = np.zeros((2, 3), dtype=np.int32)
    np.testing.assert_array_equal(overlay(image, labels, alpha=0.0), image)
    np.testing.assert_array_equal(overlay(image, labels, alpha=1.0), colourize(labels))
    half = overlay(image, labels)
    expected = np.round(0.5 * 200 + 0.5 * palette(1)[0].astype(float)).astype(np.uint8)
    np.testing.assert_array_equal(half[0, 0], expected)


def test_overlay_converts_gray_and_sixteen_bit() -> None:
    gray16 = np.full((4, 5), 30000, dtype=np.uint16)
    result = overlay(gray16, np.zeros((4, 5), np.int32), alpha=0.0)
    assert result.shape == (4, 5, 3) and result.dtype == np.uint8
    assert (result == 117).all()  # 30000 / 257, rounded


def test_overlay_checks_shapes_and_alpha() -> None:
    with pytest.raises(ParameterError, match=r"\(4, 5, 3\).*\(5, 4\)"):
        overlay(np.zeros((4, 5, 3), np.uint8), np.zeros((5, 4), np.int32))
    with pytest.raises(ParameterError, match="alpha"):
        overlay(np.zeros((4, 5), np.uint8), np.zeros((4, 5), np.int32), alpha=1.5)


def test_write_overlay(tmp_path: Path) -> None:
    image = np.full((6, 7, 3), 50, dtype=np.uint8)
    labels = np.arange(42).reshape(6, 7) % 4
    path = write_overlay(tmp_path / "o" / "x.png", image, labels, alpha=0.3)
    np.testing.assert_array_equal(read_image(path), overlay(image, labels, alpha=0.3))
