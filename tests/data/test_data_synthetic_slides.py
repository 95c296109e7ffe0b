from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy import ndimage

from unseg.data.synthetic import synthetic_slide_truth, write_synthetic_slide
from unseg.errors import ParameterError

WIDTH, HEIGHT = 1500, 1100  # SLIDE_SIZE of the synthetic_slide fixture


def test_truth_shape_classes_and_fractions() -> None:
    truth = synthetic_slide_truth(WIDTH, HEIGHT, 1.0)
    assert truth.shape == (HEIGHT, WIDTH) and truth.dtype == np.int32
    assert set(np.unique(truth)) == {0, 1, 2}
    tissue = truth > 0
    assert 0.4 < tissue.mean() < 0.6
    assert 0.3 < (truth == 2).sum() / tissue.sum() < 0.5
    # the border is glass, so tissue detection has background to skip
    assert not tissue[0].any() and not tissue[-1].any()
    assert not tissue[:, 0].any() and not tissue[:, -1].any()
    # a few large regions, not noise
    assert ndimage.label(tissue)[1] <= 5


def test_truth_at_a_downsample_samples_pixel_centres() -> None:
    full = synthetic_slide_truth(WIDTH, HEIGHT, 1.0)
    half = synthetic_slide_truth(WIDTH, HEIGHT, 2.0)
    assert half.shape == (HEIGHT // 2, WIDTH // 2)
    # centres of 2x2 blocks sit between level-0 centres: most agree with the block's pixels
    assert (half == full[::2, ::2]).mean() > 0.99
    odd = synthetic_slide_truth(WIDTH, HEIGHT, 3.7)
    assert odd.shape == (int(np.ceil(HEIGHT / 3.7)), int(np.ceil(WIDTH / 3.7)))
    # pixel (i, j) at downsample 4 is the level-0 class at ((j + 0.5) * 4, (i + 0.5) * 4)
    # = level-0 pixel centres 2 + 4j, which fall on pixel boundaries: compare coarsely
    quarter = synthetic_slide_truth(WIDTH, HEIGHT, 4.0)
    assert (quarter == full[2::4, 2::4][: quarter.shape[0], : quarter.shape[1]]).mean() > 0.98


def test_truth_seeds() -> None:
    a = synthetic_slide_truth(400, 300, 1.0, random_state=3)
    np.testing.assert_array_equal(a, synthetic_slide_truth(400, 300, 1.0, random_state=3))
    assert not np.array_equal(a, synthetic_slide_truth(400, 300, 1.0, random_state=4))
    # the layout scales with the slide: same seed, twice the size, same picture
    b = synthetic_slide_truth(800, 600, 2.0, random_state=3)
    assert (a == b).mean() > 0.99


def test_tiff_layout(synthetic_slide) -> None:
    with tifffile.TiffFile(synthetic_slide("tiff")) as tif:
        pages = list(tif.pages)
        assert [p.shape for p in pages] == [(HEIGHT, WIDTH, 3), (HEIGHT // 2, WIDTH // 2, 3)]
        assert all(p.is_tiled and p.tilewidth == p.tilelength == 256 for p in pages)
        assert all(p.compression == tifffile.COMPRESSION.JPEG for p in pages)
        assert [p.subfiletype for p in pages] == [0, 1]
        tags = pages[0].tags
        assert tags["ResolutionUnit"].value == tifffile.RESUNIT.CENTIMETER
        x_res = tags["XResolution"].value
        assert 1e4 / (x_res[0] / x_res[1]) == pytest.approx(0.25)
        assert len(tif.series[0].levels) == 2
    with tifffile.TiffFile(synthetic_slide("tiff", mpp=None)) as tif:
        assert tif.pages.first.tags.valueof("ResolutionUnit", 1) == tifffile.RESUNIT.NONE


def test_svs_layout(synthetic_slide) -> None:
    with tifffile.TiffFile(synthetic_slide("svs")) as tif:
        assert tif.is_svs
        base, thumbnail, reduced = tif.pages
        assert base.description.startswith("Aperio Image Library")
        assert "|AppMag = 40" in base.description and "|MPP = 0.2500" in base.description
        assert base.is_tiled and base.shape == (HEIGHT, WIDTH, 3)
        assert not thumbnail.is_tiled and max(thumbnail.shape[:2]) == 768
        assert reduced.is_tiled and reduced.shape == (HEIGHT // 2, WIDTH // 2, 3)
        assert reduced.subfiletype == 0  # SVS levels are not flagged as reduced images
    with tifffile.TiffFile(synthetic_slide("svs", mpp=None)) as tif:
        assert "MPP" not in tif.pages.first.description
        assert "AppMag = 40" in tif.pages.first.description


def test_svs_is_read_as_aperio_by_openslide(synthetic_slide) -> None:
    openslide = pytest.importorskip("openslide")
    with openslide.OpenSlide(synthetic_slide("svs")) as slide:
        assert slide.properties["openslide.vendor"] == "aperio"
        assert slide.level_count == 2
        assert float(slide.properties["openslide.mpp-x"]) == pytest.approx(0.25)
        assert "thumbnail" in slide.associated_images
    with openslide.OpenSlide(synthetic_slide("tiff")) as slide:
        assert slide.properties["openslide.vendor"] == "generic-tiff"
        assert slide.level_count == 2


@pytest.mark.parametrize("level", [0, 1])
def test_levels_reproduce_the_truth(synthetic_slide, level: int) -> None:
    with tifffile.TiffFile(synthetic_slide("tiff")) as tif:
        image = tif.pages[level].asarray()
    truth = synthetic_slide_truth(WIDTH, HEIGHT, 2.0**level)
    assert image.shape[:2] == truth.shape
    means = np.array([image[truth == k].mean(axis=0) for k in range(3)])
    glass, stroma, tumour = means
    np.testing.assert_allclose(glass, 240, atol=3)
    red, green, blue = stroma
    assert red > 200 and red > blue > green + 20  # pink
    red, green, blue = tumour
    assert blue > red > green and red < 180  # purple
    assert np.abs(stroma - tumour).max() > 50
    # the texture averages out over a few nuclei: nearest class colour = the truth
    smooth = ndimage.uniform_filter(image.astype(float), size=(15, 15, 1))
    nearest = np.argmin(((smooth[:, :, None, :] - means) ** 2).sum(axis=-1), axis=-1)
    inland = ndimage.binary_erosion(
        truth[..., None] == np.arange(3), structure=np.ones((15, 15, 1))
    ).any(axis=-1)
    assert (nearest[inland] == truth[inland]).mean() > 0.99
    # textures: tumour (nuclei) is much more varied than glass
    assert image[truth == 2].std(axis=0).mean() > 3 * image[truth == 0].std(axis=0).mean()


def test_same_seed_same_file(tmp_path: Path) -> None:
    a = write_synthetic_slide(tmp_path / "a.tif", 300, 200, tile=64, random_state=1)
    b = write_synthetic_slide(tmp_path / "b.tif", 300, 200, tile=64, random_state=1)
    c = write_synthetic_slide(tmp_path / "c.tif", 300, 200, tile=64, random_state=2)
    pixels = [tifffile.imread(p) for p in (a, b, c)]
    np.testing.assert_array_equal(pixels[0], pixels[1])
    assert not np.array_equal(pixels[0], pixels[2])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif", "b.tif", "c.tif"]


def test_pyramid_stops_at_1024(tmp_path: Path) -> None:
    path = write_synthetic_slide(tmp_path / "s.svs", 4100, 300, flavour="svs", tile=512)
    with tifffile.TiffFile(path) as tif:
        assert tif.pages.first.tilewidth == 512
        levels = [p.shape[1::-1] for p in tif.pages if p.is_tiled]
    assert levels == [(4100, 300), (2050, 150), (1025, 75), (513, 38)]


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    from unseg.data.synthetic import slides

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(slides, "_slide_tiles", broken)
    with pytest.raises(RuntimeError):
        write_synthetic_slide(tmp_path / "s.tif", 300, 200)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"width": 8}, "width"),
        ({"height": 0}, "height"),
        ({"flavour": "ndpi"}, "flavour"),
        ({"mpp": 0}, "mpp"),
        ({"tile": 100}, "tile"),
        ({"random_state": -1}, "random_state"),
    ],
)
def test_bad_parameters(tmp_path: Path, kwargs: dict, match: str) -> None:
    params = {"width": 300, "height": 200} | kwargs
    with pytest.raises(ParameterError, match=match):
        write_synthetic_slide(tmp_path / "s.tif", **params)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ParameterError, match="downsample"):
        synthetic_slide_truth(300, 200, 0)
