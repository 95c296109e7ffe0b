from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import tifffile

from unseg.errors import InputError, ParameterError
from unseg.io import read_label_map, write_label_map

LABELS = np.random.default_rng(1).integers(0, 5, (9, 13)).astype(np.int32)


def _expect_input_error(path: Path, *fragments: str) -> InputError:
    with pytest.raises(InputError) as info:
        read_label_map(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return info.value


def _png_header(path: Path) -> tuple[int, int]:
    """Bit depth and colour type from a PNG's IHDR chunk."""
    data = path.read_bytes()
    return data[24], data[25]


def test_uint8_round_trip(tmp_path: Path) -> None:
    path = write_label_map(tmp_path / "l.png", LABELS)
    assert PIL.Image.open(path).mode == "L"
    assert _png_header(path) == (8, 0)  # 8-bit grayscale
    back = read_label_map(path)
    assert back.dtype == np.int32
    np.testing.assert_array_equal(back, LABELS)


def test_uint16_round_trip(tmp_path: Path) -> None:
    labels = LABELS.copy()
    labels[0, 0] = 300
    labels[1, 1] = 65535
    path = write_label_map(tmp_path / "l.png", labels)
    assert PIL.Image.open(path).mode.startswith("I")
    assert _png_header(path) == (16, 0)  # 16-bit grayscale
    np.testing.assert_array_equal(read_label_map(path), labels)


def test_write_rejects_ids_outside_png_range(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="65536"):
        write_label_map(tmp_path / "l.png", np.array([[0, 65536]]))
    with pytest.raises(ParameterError, match=">= 0"):
        write_label_map(tmp_path / "l.png", np.array([[0, -1]]))
    with pytest.raises(ParameterError, match="float"):
        write_label_map(tmp_path / "l.png", LABELS.astype(float))
    with pytest.raises(ParameterError, match=".png"):
        write_label_map(tmp_path / "l.jpg", LABELS)
    assert list(tmp_path.iterdir()) == []


def test_palette_png_gives_indices(tmp_path: Path) -> None:
    image = PIL.Image.fromarray(LABELS.astype(np.uint8), mode="L").convert("P")
    image.putpalette([255, 255, 255, 200, 0, 0, 0, 200, 0, 0, 0, 200, 90, 90, 90])
    image.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_label_map(tmp_path / "p.png"), LABELS)


def test_tiff_and_npy(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "l.tif", LABELS.astype(np.uint16) * 1000)
    np.testing.assert_array_equal(read_label_map(tmp_path / "l.tif"), LABELS * 1000)
    np.save(tmp_path / "l.npy", LABELS.astype(np.int64))
    back = read_label_map(tmp_path / "l.npy")
    assert back.dtype == np.int32
    np.testing.assert_array_equal(back, LABELS)


def test_three_equal_channels_read_as_gray(tmp_path: Path) -> None:
    PIL.Image.fromarray(np.repeat(LABELS.astype(np.uint8)[..., None], 3, axis=2)).save(
        tmp_path / "rgb.png"
    )
    np.testing.assert_array_equal(read_label_map(tmp_path / "rgb.png"), LABELS)


def test_three_different_channels_are_refused(tmp_path: Path) -> None:
    rgb = np.repeat(LABELS.astype(np.uint8)[..., None], 3, axis=2)
    rgb[0, 0, 2] += 1
    PIL.Image.fromarray(rgb).save(tmp_path / "rgb.png")
    error = _expect_input_error(
        tmp_path / "rgb.png",
        "mask has 3 colour channels; expected a single-channel image of class ids",
    )
    assert error.fix is not None


def test_float_npy_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "f.npy", LABELS.astype(np.float32))
    error = _expect_input_error(tmp_path / "f.npy", "non-integer", "float32")
    assert "astype(np.int32)" in str(error)


def test_negative_ids_are_refused(tmp_path: Path) -> None:
    labels = LABELS.copy()
    labels[3, 4] = -2
    np.save(tmp_path / "neg.npy", labels)
    _expect_input_error(tmp_path / "neg.npy", "negative ids", "-2")


def test_wrong_dimensions_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "vec.npy", np.arange(5))
    _expect_input_error(tmp_path / "vec.npy", "shape (5,)")
    np.save(tmp_path / "stack.npy", np.zeros((2, 4, 4), np.int32))
    _expect_input_error(tmp_path / "stack.npy", "shape (2, 4, 4)")


def test_ids_beyond_int32_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "big.npy", np.array([[0, 2**31]], dtype=np.uint32))
    _expect_input_error(tmp_path / "big.npy", "2147483648", "int32")


def test_npz_archive_behind_npy_name(tmp_path: Path) -> None:
    np.savez(tmp_path / "archive.npz", mask=LABELS)
    (tmp_path / "archive.npz").rename(tmp_path / "archive.npy")
    _expect_input_error(tmp_path / "archive.npy", "archive of arrays")


def test_zero_size_mask(tmp_path: Path) -> None:
    np.save(tmp_path / "zero.npy", np.zeros((0, 5), np.int32))
    _expect_input_error(tmp_path / "zero.npy", "zero size (0x5)")


def test_missing_corrupt_and_empty_masks(tmp_path: Path) -> None:
    _expect_input_error(tmp_path / "missing.png", "file not found")
    (tmp_path / "empty.npy").write_bytes(b"")
    _expect_input_error(tmp_path / "empty.npy", "empty")
    (tmp_path / "junk.npy").write_text("not an array")
    _expect_input_error(tmp_path / "junk.npy", "cannot read the array")
    path = write_label_map(
        tmp_path / "cut.png", np.random.default_rng(2).integers(0, 200, (64, 64))
    )
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _expect_input_error(path, "cannot decode", "truncated or corrupt")
