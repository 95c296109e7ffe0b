from __future__ import annotations

import importlib.util
import math
import re
import struct
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import tifffile

from unseg.errors import InputError, ParameterError
from unseg.io import (
    DEFAULT_MAX_PIXELS,
    MAX_PIXELS_VARIABLE,
    as_float32,
    max_pixels,
    read_image,
    read_label_map,
    write_image,
)

RNG = np.random.default_rng(0)
RGB8 = RNG.integers(0, 256, (12, 17, 3), dtype=np.uint8)
GRAY8 = RNG.integers(0, 256, (12, 17), dtype=np.uint8)
GRAY16 = RNG.integers(0, 65536, (12, 17), dtype=np.uint16)
RGB16 = RNG.integers(0, 65536, (12, 17, 3), dtype=np.uint16)


def _expect_input_error(path: Path, *fragments: str) -> InputError:
    with pytest.raises(InputError) as info:
        read_image(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert re.search(fragment, message), f"{fragment!r} not in {message!r}"
    return info.value


# Round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".tif", ".tiff"])
@pytest.mark.parametrize("image", [RGB8, GRAY8, GRAY16], ids=["rgb8", "gray8", "gray16"])
def test_write_read_round_trip(tmp_path: Path, suffix: str, image: np.ndarray) -> None:
    path = write_image(tmp_path / f"x{suffix}", image)
    back = read_image(path)
    assert back.dtype == image.dtype
    np.testing.assert_array_equal(back, image)


def test_rgb16_round_trip_through_tiff(tmp_path: Path) -> None:
    back = read_image(write_image(tmp_path / "x.tif", RGB16))
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, RGB16)


def test_jpeg_rgb_round_trip_is_close(tmp_path: Path) -> None:
    smooth = np.zeros((32, 48, 3), dtype=np.uint8)
    smooth[..., 0] = np.linspace(0, 255, 48, dtype=np.uint8)
    smooth[..., 1] = 120
    smooth[..., 2] = np.linspace(200, 40, 32, dtype=np.uint8)[:, None]
    back = read_image(write_image(tmp_path / "x.jpg", smooth))
    assert back.shape == smooth.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - smooth).mean() < 4


def test_png_modes_are_converted(tmp_path: Path) -> None:
    rgba = np.dstack([RGB8, np.full(RGB8.shape[:2], 7, np.uint8)])
    PIL.Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), RGB8)

    la = np.dstack([GRAY8, np.full(GRAY8.shape, 9, np.uint8)])
    PIL.Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la.png"), GRAY8)

    indices = (GRAY8 % 3).astype(np.uint8)
    colours = np.array([[255, 0, 0], [0, 255, 0], [10, 20, 30]], dtype=np.uint8)
    palette_image = PIL.Image.fromarray(indices, mode="L").convert("P")
    palette_image.putpalette(colours.ravel().tolist())
    palette_image.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), colours[indices])

    bits = GRAY8 > 128
    PIL.Image.fromarray(bits).convert("1").save(tmp_path / "bits.png")
    back = read_image(tmp_path / "bits.png")
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, np.where(bits, 255, 0))


def test_cmyk_jpeg_reads_as_rgb(tmp_path: Path) -> None:
    flat = np.full((16, 16, 3), (200, 50, 30), dtype=np.uint8)
    PIL.Image.fromarray(flat).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    back = read_image(tmp_path / "cmyk.jpg")
    assert back.shape == flat.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - flat).max() < 8


def test_sixteen_bit_png_keeps_sixteen_bits(tmp_path: Path) -> None:
    PIL.Image.fromarray(GRAY16).save(tmp_path / "g16.png")
    assert PIL.Image.open(tmp_path / "g16.png").mode == "I;16"
    back = read_image(tmp_path / "g16.png")
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, GRAY16)


def test_channel_first_tiff_is_transposed(tmp_path: Path) -> None:
    tifffile.imwrite(
        tmp_path / "cf.tif", np.moveaxis(RGB8, -1, 0), photometric="rgb", planarconfig="separate"
    )
    np.testing.assert_array_equal(read_image(tmp_path / "cf.tif"), RGB8)
    rgba_first = np.concatenate([np.moveaxis(RGB8, -1, 0), np.zeros((1, 12, 17), np.uint8)])
    tifffile.imwrite(
        tmp_path / "cf4.tif",
        rgba_first,
        photometric="rgb",
        planarconfig="separate",
        extrasamples=["unassalpha"],
    )
    np.testing.assert_array_equal(read_image(tmp_path / "cf4.tif"), RGB8)


def test_rgba_tiff_drops_alpha(tmp_path: Path) -> None:
    rgba = np.dstack([RGB8, np.full(RGB8.shape[:2], 255, np.uint8)])
    tifffile.imwrite(tmp_path / "rgba.tif", rgba, photometric="rgb", extrasamples=["unassalpha"])
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.tif"), RGB8)


def test_compressed_tiff(tmp_path: Path) -> None:
    path = tmp_path / "lzw.tif"
    PIL.Image.fromarray(RGB8).save(path, compression="tiff_lzw")
    if importlib.util.find_spec("imagecodecs") is None:
        _expect_input_error(path, "imagecodecs", "pip install imagecodecs")
    else:
        np.testing.assert_array_equal(read_image(path), RGB8)


def test_wide_integer_tiff_with_small_values_reads_as_uint16(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "i32.tif", GRAY16.astype(np.int32))
    back = read_image(tmp_path / "i32.tif")
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, GRAY16)


# Bad files ------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    _expect_input_error(tmp_path / "nope.png", "file not found")


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "d.png").mkdir()
    _expect_input_error(tmp_path / "d.png", "is a folder")


def test_text_file_named_png(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("these are not pixels")
    _expect_input_error(path, "not an image")


def test_empty_file(tmp_path: Path) -> None:
    for name in ("empty.png", "empty.tif"):
        (tmp_path / name).write_bytes(b"")
        _expect_input_error(tmp_path / name, r"empty \(0 bytes\)")


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif"])
def test_truncated_file(tmp_path: Path, suffix: str) -> None:
    path = write_image(tmp_path / f"whole{suffix}", RNG.integers(0, 256, (64, 64, 3), np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    error = _expect_input_error(path, "cannot (decode|read)", "truncated or corrupt")
    assert error.fix is not None


@pytest.mark.filterwarnings("ignore:.*zero-size array:UserWarning")
def test_zero_size_image(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "zero.tif", np.zeros((0, 5), np.uint8))
    _expect_input_error(tmp_path / "zero.tif", r"image has zero size \(0x5\)")


@pytest.mark.parametrize(
    ("array", "fragment"),
    [
        (np.zeros((4, 5), np.float32), "float32"),
        (np.full((4, 5), 70000, np.uint32), "uint32 with values 70000..70000"),
        (np.full((4, 5), -3, np.int16), "int16"),
    ],
)
def test_unsupported_pixel_type(tmp_path: Path, array: np.ndarray, fragment: str) -> None:
    tifffile.imwrite(tmp_path / "bad.tif", array)
    error = _expect_input_error(tmp_path / "bad.tif", "unsupported pixel type", fragment)
    assert "8- or 16-bit" in str(error)


def test_image_too_large_for_pillow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_image(tmp_path / "big.png", GRAY8)
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", GRAY8.size // 4)
    _expect_input_error(path, "too large", "tiles")


@pytest.mark.parametrize("channels", [2, 5])
def test_unsupported_channel_count(tmp_path: Path, channels: int) -> None:
    path = tmp_path / "many.tif"
    tifffile.imwrite(
        path, np.zeros((6, 7, channels), np.uint8), photometric="minisblack", planarconfig="contig"
    )
    _expect_input_error(path, f"unsupported channel count {channels}")


# as_float32 and write_image -------------------------------------------------------------------


def test_as_float32_scales_by_dtype() -> None:
    np.testing.assert_allclose(as_float32(np.array([0, 51, 255], np.uint8)), [0, 0.2, 1])
    np.testing.assert_allclose(as_float32(np.array([0, 65535], np.uint16)), [0, 1])
    assert as_float32(GRAY8).dtype == np.float32
    assert as_float32(np.array([0.5])).dtype == np.float32
    with pytest.raises(ParameterError, match="int32"):
        as_float32(np.zeros(3, np.int32))


def test_write_image_rejects_what_the_format_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="16-bit RGB"):
        write_image(tmp_path / "x.png", RGB16)
    with pytest.raises(ParameterError, match="16-bit grayscale"):
        write_image(tmp_path / "x.jpg", GRAY16)
    with pytest.raises(ParameterError, match="must end in"):
        write_image(tmp_path / "x.bmp", RGB8)
    with pytest.raises(ParameterError, match="float64"):
        write_image(tmp_path / "x.png", RGB8 / 255)
    with pytest.raises(ParameterError, match="shape"):
        write_image(tmp_path / "x.png", np.zeros((4, 4, 2), np.uint8))
    assert list(tmp_path.iterdir()) == []


# The pixel limit ------------------------------------------------------------------------------

BOMB_SIDE = 20_000  # 400 million pixels: more than the default limit


def _zero_tiles(side: int) -> Iterator[np.ndarray]:
    tile = np.zeros((side, side), np.uint8)
    for _ in range(math.ceil(BOMB_SIDE / side) ** 2):
        yield tile


def test_default_limit_is_pillows_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAX_PIXELS_VARIABLE, raising=False)
    assert max_pixels() == DEFAULT_MAX_PIXELS == 2 * PIL.Image.MAX_IMAGE_PIXELS
    assert BOMB_SIDE**2 > DEFAULT_MAX_PIXELS


def test_compressed_tiff_bomb_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MAX_PIXELS_VARIABLE, raising=False)
    path = tmp_path / "bomb.tif"
    tifffile.imwrite(
        path,
        _zero_tiles(2048),
        shape=(BOMB_SIDE, BOMB_SIDE),
        dtype=np.uint8,
        tile=(2048, 2048),
        compression="zlib",
    )
    assert path.stat().st_size < 2_000_000  # a small file that decodes to 400 MB
    tracemalloc.start()
    try:
        error = _expect_input_error(
            path, "too large", "20000x20000", "400,000,000", f"{MAX_PIXELS_VARIABLE}=400000000"
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000  # nothing was decoded
    assert error.fix is not None and "raise the limit" in error.fix


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A grayscale PNG whose header declares ``width`` x ``height`` (its data is one row)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(bytes(width + 1))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data)
    path.write_bytes(png + chunk(b"IEND", b""))
    return path


def test_png_bomb_is_refused_with_the_limit_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MAX_PIXELS_VARIABLE, raising=False)
    path = _png_header_only(tmp_path / "bomb.png", BOMB_SIDE, BOMB_SIDE)
    _expect_input_error(path, "too large", "20000x20000", MAX_PIXELS_VARIABLE)
    with pytest.raises(InputError, match=MAX_PIXELS_VARIABLE):
        read_label_map(path)


def test_limit_is_set_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pixels = GRAY8.size  # 12 x 17 = 204
    files = [write_image(tmp_path / f"g{suffix}", GRAY8) for suffix in (".png", ".tif")]
    np.save(tmp_path / "g.npy", GRAY8.astype(np.int32))
    monkeypatch.setenv(MAX_PIXELS_VARIABLE, str(pixels - 1))
    for path in files:
        _expect_input_error(path, "too large", "12x17", f"{MAX_PIXELS_VARIABLE}={pixels}")
    for path in [*files, tmp_path / "g.npy"]:
        with pytest.raises(InputError, match="too large"):
            read_label_map(path)
    monkeypatch.setenv(MAX_PIXELS_VARIABLE, str(pixels))
    for path in files:
        np.testing.assert_array_equal(read_image(path), GRAY8)
    np.testing.assert_array_equal(read_label_map(tmp_path / "g.npy"), GRAY8)
    for bad in ("many", "0", "-5", "1e9"):
        monkeypatch.setenv(MAX_PIXELS_VARIABLE, bad)
        with pytest.raises(ParameterError, match=MAX_PIXELS_VARIABLE):
            read_image(files[0])


def test_raised_limit_replaces_pillows_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_image(tmp_path / "g.png", GRAY8)
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", GRAY8.size // 4)
    monkeypatch.setenv(MAX_PIXELS_VARIABLE, str(GRAY8.size))
    np.testing.assert_array_equal(read_image(path), GRAY8)
    assert PIL.Image.MAX_IMAGE_PIXELS == GRAY8.size // 4  # Pillow's setting is left as it was


# Multi-page TIFF ------------------------------------------------------------------------------


@pytest.mark.parametrize("pages", [3, 4, 5])
def test_page_stack_is_read_as_its_first_page(
    tmp_path: Path, pages: int, unseg_warnings: list[str]
) -> None:
    stack = RNG.integers(0, 256, (pages, 12, 17), dtype=np.uint8)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack, photometric="minisblack")
    back = read_image(path)
    assert back.shape == (12, 17) and back.dtype == np.uint8
    np.testing.assert_array_equal(back, stack[0])
    assert len(unseg_warnings) == 1
    assert str(path) in unseg_warnings[0] and f"stack of {pages} pages" in unseg_warnings[0]
    np.testing.assert_array_equal(read_label_map(path), stack[0])


def test_stack_of_rgb_pages_is_read_as_its_first_page(
    tmp_path: Path, unseg_warnings: list[str]
) -> None:
    path = tmp_path / "rgb-stack.tif"
    tifffile.imwrite(path, np.stack([RGB8, 255 - RGB8]), photometric="rgb")
    np.testing.assert_array_equal(read_image(path), RGB8)
    assert "stack of 2 pages" in unseg_warnings[0]


@pytest.mark.parametrize("planar", ["contig", "separate"])
def test_rgb_tiff_is_one_page_of_three_samples(
    tmp_path: Path, planar: str, unseg_warnings: list[str]
) -> None:
    path = tmp_path / "rgb.tif"
    data = RGB8 if planar == "contig" else np.moveaxis(RGB8, -1, 0)
    tifffile.imwrite(path, data, photometric="rgb", planarconfig=planar)
    np.testing.assert_array_equal(read_image(path), RGB8)
    assert unseg_warnings == []


# Bit depth ------------------------------------------------------------------------------------


def test_twelve_bit_tiff_is_scaled_by_its_own_maximum(tmp_path: Path) -> None:
    data = RNG.integers(0, 4096, (12, 17), dtype=np.uint16)
    data[0, 0], data[0, 1] = 0, 4095
    path = tmp_path / "twelve.tif"
    tifffile.imwrite(path, data, bitspersample=12)
    with tifffile.TiffFile(path) as tif:
        assert tif.pages.first.bitspersample == 12
    back = read_image(path)
    assert back.dtype == np.uint16
    assert back[0, 0] == 0 and back[0, 1] == 65535
    np.testing.assert_allclose(as_float32(back), data / 4095, atol=1e-5)
    np.testing.assert_array_equal(read_label_map(path), data)  # ids are never rescaled


def test_four_bit_tiff_is_scaled_to_eight_bits(tmp_path: Path) -> None:
    data = np.arange(16, dtype=np.uint8).reshape(4, 4)
    tifffile.imwrite(tmp_path / "four.tif", data, bitspersample=4)
    np.testing.assert_array_equal(read_image(tmp_path / "four.tif"), data * 17)
