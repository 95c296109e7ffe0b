from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from unseg.errors import InputError, ParameterError
from unseg.io import SLIDE_SUFFIXES, Slide, is_slide, open_slide, write_image

pytest.importorskip("openslide")
pytest.importorskip("tiffslide")

WIDTH, HEIGHT = 1500, 1100  # SLIDE_SIZE of the synthetic_slide fixture
SHARED_SLIDES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "slides"
REAL_SLIDE = SHARED_SLIDES / "cmu_small_region.svs"
needs_real_slide = pytest.mark.skipif(not REAL_SLIDE.exists(), reason=f"{REAL_SLIDE} not found")

BACKENDS = ("openslide", "tiffslide")


def test_importing_unseg_io_does_not_import_slide_libraries() -> None:
    import subprocess

    code = "import sys, unseg.io; print('openslide' in sys.modules, 'tiffslide' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("flavour", ["tiff", "svs"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_synthetic_slide_opens_as_pyramid(synthetic_slide, flavour: str, backend: str) -> None:
    with open_slide(synthetic_slide(flavour), backend=backend) as slide:
        assert isinstance(slide, Slide)
        assert slide.backend == backend
        assert slide.dimensions == (WIDTH, HEIGHT)
        assert slide.level_count == 2
        assert slide.level_dimensions == ((WIDTH, HEIGHT), (WIDTH // 2, HEIGHT // 2))
        assert slide.level_downsamples == pytest.approx((1.0, 2.0))
        assert slide.mpp == pytest.approx(0.25)
        if flavour == "svs":
            assert slide.objective_power == 40
            assert slide.properties[f"{backend}.vendor"] == "aperio"
        else:
            assert slide.objective_power is None


@pytest.mark.parametrize("flavour", ["tiff", "svs"])
def test_backends_agree_on_pixels(synthetic_slide, flavour: str) -> None:
    path = synthetic_slide(flavour)
    with open_slide(path, backend="openslide") as a, open_slide(path, backend="tiffslide") as b:
        for level, location, size in [
            (0, (300, 200), (400, 300)),
            (1, (600, 400), (300, 200)),
            (0, (WIDTH - 100, HEIGHT - 50), (300, 200)),  # partly outside
            (1, (-64, -32), (100, 80)),
        ]:
            region_a = a.read_region(location, level, size)
            region_b = b.read_region(location, level, size)
            assert region_a.shape == region_b.shape == (size[1], size[0], 3)
            assert region_a.dtype == region_b.dtype == np.uint8
            assert np.abs(region_a.astype(int) - region_b).max() <= 2


def test_automatic_backend_is_openslide(synthetic_slide) -> None:
    with open_slide(synthetic_slide("tiff")) as slide:
        assert slide.backend == "openslide"


def test_tiffslide_fallback_when_openslide_is_missing(synthetic_slide, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "openslide", None)  # import openslide -> ImportError
    with open_slide(synthetic_slide("svs")) as slide:
        assert slide.backend == "tiffslide"
        assert slide.level_count == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_of_bounds_reads_are_white(synthetic_slide, backend: str) -> None:
    with open_slide(synthetic_slide("tiff"), backend=backend) as slide:
        outside = slide.read_region((WIDTH + 10, 0), 0, (50, 40))
        assert outside.shape == (40, 50, 3) and (outside == 255).all()
        far = slide.read_region((-10_000, -10_000), 1, (20, 30))
        assert far.shape == (30, 20, 3) and (far == 255).all()
        corner = slide.read_region((-20, -10), 0, (60, 40))
        assert (corner[:10] == 255).all() and (corner[:, :20] == 255).all()
        # glass inside the slide is light grey, not the white of the padding
        assert corner[10:, 20:].mean() < 250
        edge = slide.read_region((WIDTH - 30, HEIGHT - 20), 0, (50, 50))
        assert (edge[20:] == 255).all() and (edge[:, 30:] == 255).all()
        assert edge[:20, :30].mean() < 250


def test_read_region_matches_level_pixels(synthetic_slide) -> None:
    with open_slide(synthetic_slide("tiff"), backend="tiffslide") as slide:
        level1 = slide.read_region((0, 0), 1, slide.level_dimensions[1])
        # level-0 location (2x, 2y) is level-1 pixel (x, y)
        part = slide.read_region((200, 100), 1, (64, 32))
        np.testing.assert_array_equal(part, level1[50:82, 100:164])


def test_read_region_rejects_bad_level_and_size(synthetic_slide) -> None:
    with open_slide(synthetic_slide("tiff")) as slide:
        with pytest.raises(ParameterError, match="level"):
            slide.read_region((0, 0), 2, (10, 10))
        with pytest.raises(ParameterError, match="size"):
            slide.read_region((0, 0), 0, (0, 10))
    with pytest.raises(ParameterError, match="closed"):
        slide.read_region((0, 0), 0, (10, 10))


def test_best_level_for_downsample(synthetic_slide) -> None:
    with open_slide(synthetic_slide("svs")) as slide:
        assert slide.best_level_for_downsample(0.5) == 0
        assert slide.best_level_for_downsample(1.0) == 0
        assert slide.best_level_for_downsample(1.9) == 0
        assert slide.best_level_for_downsample(2.0) == 1
        assert slide.best_level_for_downsample(64.0) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_thumbnail_size_and_source_level(synthetic_slide, backend: str) -> None:
    with open_slide(synthetic_slide("svs"), backend=backend) as slide:
        levels: list[int] = []
        read = slide.read_region

        def spy(location: tuple[int, int], level: int, size: tuple[int, int]) -> np.ndarray:
            levels.append(level)
            return read(location, level, size)

        slide.read_region = spy  # type: ignore[method-assign]
        thumbnail = slide.thumbnail(500)
        assert thumbnail.shape == (367, 500, 3) and thumbnail.dtype == np.uint8
        assert levels == [1]  # 750 x 550 is enough: level 0 is never read
        levels.clear()
        assert slide.thumbnail(750).shape == (550, 750, 3)
        assert levels == [1]
        levels.clear()
        assert slide.thumbnail(1000).shape == (733, 1000, 3)
        assert levels == [0]
        # never larger than level 0
        assert slide.thumbnail(5000).shape == (HEIGHT, WIDTH, 3)
        # tissue (coloured) and glass (grey) both show
        saturation = thumbnail.max(axis=2).astype(int) - thumbnail.min(axis=2)
        assert (saturation > 40).mean() > 0.3 and (saturation < 10).mean() > 0.3


def test_thumbnail_rejects_bad_size(synthetic_slide) -> None:
    with open_slide(synthetic_slide("tiff")) as slide, pytest.raises(ParameterError):
        slide.thumbnail(0)


def test_missing_mpp_says_pass_mpp(synthetic_slide) -> None:
    path = synthetic_slide("tiff", mpp=None)  # no resolution tags, no objective power
    for backend in BACKENDS:
        with open_slide(path, backend=backend) as slide:
            with pytest.raises(InputError, match="--mpp") as info:
                _ = slide.mpp
            assert str(path) in str(info.value)
            assert "microns per pixel" in str(info.value)
        with open_slide(path, backend=backend, mpp=0.5) as slide:
            assert slide.mpp == 0.5


@pytest.mark.parametrize("backend", BACKENDS)
def test_objective_power_fallback(synthetic_slide, backend: str) -> None:
    # the SVS written without MPP keeps "AppMag = 40": 10 / 40 = 0.25 um/px
    with open_slide(synthetic_slide("svs", mpp=None), backend=backend) as slide:
        assert slide.objective_power == 40
        assert slide.mpp == pytest.approx(0.25)
    with open_slide(synthetic_slide("svs", mpp=None), backend=backend, mpp=0.3) as slide:
        assert slide.mpp == pytest.approx(0.3)  # a given mpp wins


@pytest.mark.parametrize("backend", BACKENDS)
def test_mpp_source_and_the_objective_power_warning(
    synthetic_slide, backend: str, unseg_warnings: list[str]
) -> None:
    guessed = synthetic_slide("svs", mpp=None)  # AppMag = 40, no MPP
    with open_slide(guessed, backend=backend) as slide:
        assert slide.mpp_source == "objective-power"
        assert unseg_warnings == []  # warned when the guess is used, not on opening
        assert slide.mpp == pytest.approx(0.25)
        assert slide.mpp == pytest.approx(0.25)
    assert len(unseg_warnings) == 1  # once per slide
    assert str(guessed) in unseg_warnings[0]
    assert "0.25 um/px" in unseg_warnings[0] and "--mpp" in unseg_warnings[0]
    unseg_warnings.clear()
    with open_slide(guessed, backend=backend, mpp=0.3) as slide:
        assert slide.mpp_source == "given" and slide.mpp == 0.3
    with open_slide(synthetic_slide("svs"), backend=backend) as slide:
        assert slide.mpp_source == "metadata" and slide.mpp == pytest.approx(0.25)
    with open_slide(synthetic_slide("tiff", mpp=None), backend=backend) as slide:
        assert slide.mpp_source is None
    assert unseg_warnings == []


def test_image_slide_mpp_source(tmp_path: Path) -> None:
    path = tmp_path / "plain.tif"
    image = np.full((64, 80, 3), 200, dtype=np.uint8)
    tifffile.imwrite(
        path, image, photometric="rgb", resolution=(20000, 20000), resolutionunit="CENTIMETER"
    )
    with open_slide(path, backend="image") as slide:
        assert slide.mpp_source == "metadata"
    with open_slide(path, backend="image", mpp=0.4) as slide:
        assert slide.mpp_source == "given"


def test_given_mpp_overrides_metadata(synthetic_slide) -> None:
    with open_slide(synthetic_slide("tiff"), mpp=0.5) as slide:
        assert slide.mpp == 0.5
    with pytest.raises(ParameterError, match="mpp"):
        open_slide(synthetic_slide("tiff"), mpp=-1)


def test_pickle_reopens(synthetic_slide) -> None:
    slide = open_slide(synthetic_slide("svs"), backend="tiffslide", mpp=0.3)
    clone = pickle.loads(pickle.dumps(slide))
    assert isinstance(clone, Slide) and clone is not slide
    assert clone.backend == "tiffslide"
    assert clone.mpp == 0.3
    assert clone.level_dimensions == slide.level_dimensions
    np.testing.assert_array_equal(
        clone.read_region((100, 100), 0, (64, 64)), slide.read_region((100, 100), 0, (64, 64))
    )
    slide.close()
    clone.close()
    # a closed slide pickles too: it re-opens from its path
    assert pickle.loads(pickle.dumps(slide)).dimensions == (WIDTH, HEIGHT)


# -- the image backend -------------------------------------------------------------------


def test_png_is_a_one_level_slide(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(120, 200, 3), dtype=np.uint8)
    path = write_image(tmp_path / "plain.png", image)
    with open_slide(path) as slide:
        assert slide.backend == "image"
        assert slide.dimensions == (200, 120) and slide.level_count == 1
        assert slide.level_downsamples == (1.0,)
        np.testing.assert_array_equal(slide.read_region((0, 0), 0, (200, 120)), image)
        region = slide.read_region((190, 110), 0, (20, 20))
        np.testing.assert_array_equal(region[:10, :10], image[110:, 190:])
        assert (region[10:] == 255).all() and (region[:, 10:] == 255).all()
        np.testing.assert_array_equal(slide.thumbnail(500), image)
        assert slide.thumbnail(100).shape == (60, 100, 3)
        with pytest.raises(InputError, match="--mpp"):
            _ = slide.mpp
    with open_slide(path, mpp=0.5) as slide:
        assert slide.mpp == 0.5
    clone = pickle.loads(pickle.dumps(open_slide(path, mpp=0.5)))
    assert clone.backend == "image" and clone.mpp == 0.5


def test_grayscale_image_becomes_rgb(tmp_path: Path) -> None:
    gray = np.arange(50 * 40, dtype=np.uint8).reshape(50, 40)
    with open_slide(write_image(tmp_path / "gray.png", gray)) as slide:
        region = slide.read_region((0, 0), 0, (40, 50))
        assert region.shape == (50, 40, 3)
        np.testing.assert_array_equal(region[..., 1], gray)


def test_plain_tiff_mpp_from_resolution_tags(tmp_path: Path) -> None:
    image = np.full((64, 80, 3), 200, dtype=np.uint8)
    path = tmp_path / "plain.tif"
    tifffile.imwrite(
        path, image, photometric="rgb", resolution=(20000, 20000), resolutionunit="CENTIMETER"
    )
    with open_slide(path, backend="image") as slide:
        assert slide.mpp == pytest.approx(0.5)
    # 300 dpi (an image editor's default) is not a microscope resolution
    tifffile.imwrite(path, image, photometric="rgb", resolution=(300, 300), resolutionunit="INCH")
    with open_slide(path, backend="image") as slide, pytest.raises(InputError, match="--mpp"):
        _ = slide.mpp


def test_plain_tiff_opens_automatically(tmp_path: Path) -> None:
    image = np.full((64, 80, 3), 180, dtype=np.uint8)
    path = write_image(tmp_path / "plain.tif", image)
    with open_slide(path) as slide:  # openslide refuses a stripped TIFF; tiffslide takes it
        assert slide.backend in ("tiffslide", "image")
        np.testing.assert_array_equal(slide.read_region((0, 0), 0, (80, 64)), image)


# -- bad files ---------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found") as info:
        open_slide(tmp_path / "nope.svs")
    assert "nope.svs" in str(info.value)


@pytest.mark.parametrize("backend", [None, *BACKENDS])
def test_garbage_bytes(tmp_path: Path, backend: str | None) -> None:
    path = tmp_path / "garbage.svs"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(InputError) as info:
        open_slide(path, backend=backend)
    assert str(path) in str(info.value)
    assert info.value.fix


@pytest.mark.parametrize("flavour", ["tiff", "svs"])
@pytest.mark.parametrize("backend", [None, *BACKENDS])
def test_truncated_copy(synthetic_slide, tmp_path: Path, flavour: str, backend: str | None) -> None:
    source = synthetic_slide(flavour)
    path = tmp_path / f"truncated{source.suffix}"
    path.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(InputError, match="truncated") as info:
        open_slide(path, backend=backend)
    assert str(path) in str(info.value)


@needs_real_slide
def test_truncated_real_slide(tmp_path: Path) -> None:
    path = tmp_path / "cut.svs"
    path.write_bytes(REAL_SLIDE.read_bytes()[:500_000])
    with pytest.raises(InputError, match="cut.svs"):
        open_slide(path)


def test_empty_file_and_wrong_backend(tmp_path: Path, synthetic_slide) -> None:
    empty = tmp_path / "empty.svs"
    empty.touch()
    with pytest.raises(InputError, match="empty"):
        open_slide(empty)
    png = write_image(tmp_path / "a.png", np.zeros((8, 8, 3), dtype=np.uint8))
    with pytest.raises(InputError, match="OpenSlide"):
        open_slide(png, backend="openslide")
    with pytest.raises(ParameterError, match="backend"):
        open_slide(synthetic_slide("tiff"), backend="pillow")


# -- the real slide ----------------------------------------------------------------------


@needs_real_slide
def test_real_svs_with_both_backends() -> None:
    with (
        open_slide(REAL_SLIDE, backend="openslide") as a,
        open_slide(REAL_SLIDE, backend="tiffslide") as b,
    ):
        for slide in (a, b):
            assert slide.dimensions == (2220, 2967)
            assert slide.level_count == 1
            assert slide.objective_power == 20
            assert slide.mpp == pytest.approx(0.499)
            assert slide.properties[f"{slide.backend}.vendor"] == "aperio"
        region_a = a.read_region((1000, 1200), 0, (300, 200))
        region_b = b.read_region((1000, 1200), 0, (300, 200))
        assert np.abs(region_a.astype(int) - region_b).mean() < 2
        assert region_a.std() > 10  # tissue, not blank
        thumbnail = a.thumbnail(512)
        assert thumbnail.shape == (512, 383, 3)
        assert np.abs(thumbnail.astype(int) - b.thumbnail(512)).mean() < 2


# -- is_slide ----------------------------------------------------------------------------


def test_is_slide(tmp_path: Path, synthetic_slide) -> None:
    for suffix in SLIDE_SUFFIXES:
        assert is_slide(tmp_path / f"x{suffix}")  # by name, even before it exists
    assert is_slide(tmp_path / "X.SVS")
    assert is_slide(synthetic_slide("tiff"))  # pyramidal tiled TIFF
    assert is_slide(synthetic_slide("svs"))
    for name in ("a.png", "a.jpg", "a.jpeg"):
        assert not is_slide(write_image(tmp_path / name, np.zeros((8, 8, 3), dtype=np.uint8)))
    plain = write_image(tmp_path / "plain.tif", np.zeros((64, 64, 3), dtype=np.uint8))
    assert not is_slide(plain)
    tiled_small = tmp_path / "tiled.tif"
    tifffile.imwrite(tiled_small, np.zeros((64, 64, 3), dtype=np.uint8), tile=(32, 32))
    assert not is_slide(tiled_small)
    wide = tmp_path / "wide.tiff"
    tifffile.imwrite(wide, np.zeros((16, 8200 + 16, 3), dtype=np.uint8), tile=(16, 16))
    assert is_slide(wide)
    assert not is_slide(tmp_path / "missing.tif")
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"not a tiff")
    assert not is_slide(broken)
