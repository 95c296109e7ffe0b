from __future__ import annotations

import json
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import unseg.io.geojson as geojson
import unseg.io.ome_tiff as ome_tiff
import unseg.io.slide_labels as slide_labels
from unseg.errors import ParameterError
from unseg.io import (
    colourize,
    label_areas,
    label_geojson,
    palette,
    write_area_csv,
    write_geojson,
    write_ome_tiff,
)

tifffile = pytest.importorskip("tifffile")
shapely = pytest.importorskip("shapely")
pytest.importorskip("rasterio")
from shapely.geometry import shape  # noqa: E402


def blobby(height: int, width: int, n_values: int, seed: int = 0) -> np.ndarray:
    """A label map with blocks of several sizes, holes, islands and diagonal contacts."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, n_values, size=(height // 4 + 1, width // 4 + 1))
    labels = np.kron(coarse, np.ones((4, 4), dtype=np.int64))[:height, :width]
    speckle = rng.random((height, width)) < 0.15
    labels[speckle] = rng.integers(0, n_values, size=int(speckle.sum()))
    return labels.astype(np.uint8)


def smooth(height: int, width: int) -> np.ndarray:
    """Three sectors around the centre, a disc of a fourth concept and a no-tissue disc."""
    y, x = np.mgrid[:height, :width] + 0.5
    sector = (np.arctan2(y - height / 2, x - width / 2) + np.pi) // (2 * np.pi / 3)
    labels: np.ndarray = 1 + np.minimum(sector, 2).astype(np.uint8)
    labels[(x - width / 3) ** 2 + (y - height / 3) ** 2 < (height / 5) ** 2] = 4
    labels[(x - 0.8 * width) ** 2 + (y - 0.8 * height) ** 2 < (height / 6) ** 2] = 0
    return labels


def exact(labels: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`label_geojson` with the exact pixel outlines (no simplification)."""
    return label_geojson(labels, simplify=0, **kwargs)


def geometries(collection: dict[str, Any]) -> dict[int, Any]:
    """Shapely geometry of each feature, by label value (concept + 1)."""
    return {f["properties"]["label"] + 1: shape(f["geometry"]) for f in collection["features"]}


class Windowed:
    """A label map that can only be sliced (like a file-backed canvas); records its reads."""

    def __init__(self, labels: np.ndarray) -> None:
        self._labels = labels
        self.shape, self.dtype = labels.shape, labels.dtype
        self.largest_read = 0

    def __getitem__(self, key: Any) -> np.ndarray:
        window = np.array(self._labels[key])
        self.largest_read = max(self.largest_read, window.size)
        return window

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise AssertionError("the exporters must not load the whole map")


def ome_pixels(tif: Any) -> dict[str, str]:
    root = ET.fromstring(tif.ome_metadata)
    pixels = root.find(".//{*}Pixels")
    assert pixels is not None
    return dict(pixels.attrib)


def ome_maps(tif: Any) -> dict[str, dict[str, str]]:
    """Each MapAnnotation the image refers to, by namespace: its keys and values."""
    root = ET.fromstring(tif.ome_metadata)
    refs = {ref.get("ID") for ref in root.findall("./{*}Image/{*}AnnotationRef")}
    maps = {}
    for annotation in root.findall("./{*}StructuredAnnotations/{*}MapAnnotation"):
        assert annotation.get("ID") in refs
        values = {str(m.get("K")): str(m.text) for m in annotation.findall("./{*}Value/{*}M")}
        maps[str(annotation.get("Namespace"))] = values
    return maps


# -- OME-TIFF -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_ome_tiff_pyramid(tmp_path: Path, dtype: type) -> None:
    labels = blobby(700, 1000, 6).astype(dtype)
    if dtype is np.uint16:
        labels[labels == 5] = 60000
    labels[:, ::2] = np.where(labels[:, ::2] == 1, 3, labels[:, ::2])  # averaging would show
    path = write_ome_tiff(tmp_path / "s.ome.tif", labels, mpp=0.25, downsample=8, tile=128)
    assert path == tmp_path / "s.ome.tif"
    assert [p.name for p in tmp_path.iterdir()] == ["s.ome.tif"]
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome and len(tif.series) == 1 and len(tif.pages) == 1
        levels = tif.series[0].levels
        assert [level.shape for level in levels] == [
            (700, 1000),
            (350, 500),
            (175, 250),
            (88, 125),
        ]
        for i, level in enumerate(levels):
            data = level.asarray()
            assert data.dtype == dtype
            np.testing.assert_array_equal(data, labels[:: 2**i, :: 2**i])
            page = level.keyframe
            assert (page.tilelength, page.tilewidth) == (128, 128)
            assert page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE
            assert page.resolutionunit == tifffile.RESUNIT.CENTIMETER
            x_per_cm, y_per_cm = page.resolution
            assert 1e4 / x_per_cm == pytest.approx(2.0 * 2**i)
            assert 1e4 / y_per_cm == pytest.approx(2.0 * 2**i)
        assert len(tif.pages[0].subifds) == 3
        pixels = ome_pixels(tif)
    assert float(pixels["PhysicalSizeX"]) == pytest.approx(0.25 * 8)
    assert float(pixels["PhysicalSizeY"]) == pytest.approx(0.25 * 8)
    assert pixels["PhysicalSizeXUnit"] == pixels["PhysicalSizeYUnit"] == "µm"
    assert (pixels["SizeX"], pixels["SizeY"]) == ("1000", "700")
    assert pixels["Type"] == np.dtype(dtype).name


def test_ome_tiff_from_memmap(tmp_path: Path) -> None:
    source = blobby(300, 520, 9)
    labels = np.memmap(tmp_path / "labels.dat", dtype=np.uint8, mode="w+", shape=source.shape)
    labels[:] = source
    labels.flush()
    labels = np.memmap(tmp_path / "labels.dat", dtype=np.uint8, mode="r", shape=source.shape)
    path = write_ome_tiff(tmp_path / "m.ome.tiff", labels, mpp=0.5, tile=64)
    with tifffile.TiffFile(path) as tif:
        levels = tif.series[0].levels
        assert [level.shape for level in levels] == [
            (300, 520),
            (150, 260),
            (75, 130),
            (38, 65),
            (19, 33),
        ]
        for i, level in enumerate(levels):
            np.testing.assert_array_equal(level.asarray(), source[:: 2**i, :: 2**i])
        assert float(ome_pixels(tif)["PhysicalSizeX"]) == pytest.approx(0.5)


def test_exporters_read_windows_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    labels = blobby(96, 80, 5).astype(np.int32)  # int32: scanned for its range first
    monkeypatch.setattr(slide_labels, "_COUNT_PIXELS", 800)  # 10 rows per counting strip
    source = Windowed(labels)
    path = write_ome_tiff(tmp_path / "w.ome.tif", source, mpp=1.0, tile=32)
    assert source.largest_read == 32 * 80  # bands of one row of tiles
    with tifffile.TiffFile(path) as tif:
        levels = tif.series[0].levels
        assert len(levels) == 3
        for i, level in enumerate(levels):
            np.testing.assert_array_equal(level.asarray(), labels[:: 2**i, :: 2**i])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.ome.tif"]  # work files removed
    source = Windowed(labels)
    found = geometries(exact(source, strip_rows=16))
    assert source.largest_read == 16 * 80
    assert all(found[v].area == (labels == v).sum() for v in range(1, 5))
    source = Windowed(labels)
    label_geojson(source, strip_rows=16)  # simplified: the same reads
    assert source.largest_read == 16 * 80
    source = Windowed(labels)
    rows = label_areas(source, mpp=1.0)
    assert source.largest_read == 800
    assert [r["pixels"] for r in rows] == np.bincount(labels.ravel())[1:].tolist()


def test_ome_tiff_levels_come_band_by_band(tmp_path: Path) -> None:
    labels = blobby(130, 70, 5)
    halved = tmp_path / "halved.raw"
    with open(halved, "wb") as fh:
        tiles = list(
            ome_tiff._band_tiles(ome_tiff._label_rows(labels, labels.dtype), (130, 70), 16, fh)
        )
    assert all(t.shape[0] <= 16 and t.shape[1] <= 16 for t in tiles)
    rows, cols = 9, 5
    assert len(tiles) == rows * cols
    grid = np.block([[tiles[r * cols + c] for c in range(cols)] for r in range(rows)])
    np.testing.assert_array_equal(grid, labels)
    read_rows = ome_tiff._raw_rows(halved, 35, labels.dtype)
    np.testing.assert_array_equal(read_rows(0, 65), labels[::2, ::2])
    np.testing.assert_array_equal(read_rows(7, 9), labels[14:18:2, ::2])


def test_ome_tiff_single_level_zstd_and_int32(tmp_path: Path) -> None:
    labels = blobby(40, 30, 4).astype(np.int32)
    path = write_ome_tiff(tmp_path / "a.ome.tif", labels, mpp=1.0, compression="zstd")
    with tifffile.TiffFile(path) as tif:
        assert len(tif.series[0].levels) == 1 and not tif.pages[0].subifds
        assert tif.pages[0].compression == tifffile.COMPRESSION.ZSTD
        data = tif.asarray()
    assert data.dtype == np.uint8  # int32 values below 256 are stored as uint8
    np.testing.assert_array_equal(data, labels)
    wide = labels.copy()
    wide[0, 0] = 300
    with tifffile.TiffFile(write_ome_tiff(tmp_path / "b.ome.tif", wide, mpp=1.0)) as tif:
        assert tif.asarray().dtype == np.uint16


def test_ome_tiff_rejects_bad_input(tmp_path: Path) -> None:
    labels = np.zeros((20, 20), np.uint8)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"mpp": 0.0}, "mpp"),
        ({"mpp": 1.0, "downsample": -2.0}, "downsample"),
        ({"mpp": 1.0, "tile": 100}, "multiple of 16"),
        ({"mpp": 1.0, "compression": "jpeg"}, "compression"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ParameterError, match=match):
            write_ome_tiff(tmp_path / "x.ome.tif", labels, **kwargs)
    with pytest.raises(ParameterError, match=".tif"):
        write_ome_tiff(tmp_path / "x.png", labels, mpp=1.0)
    with pytest.raises(ParameterError, match=">= 0"):
        write_ome_tiff(tmp_path / "x.ome.tif", np.full((4, 4), -1, np.int16), mpp=1.0)
    with pytest.raises(ParameterError, match="65535"):
        write_ome_tiff(tmp_path / "x.ome.tif", np.full((4, 4), 70000, np.int32), mpp=1.0)
    with pytest.raises(ParameterError, match="integer"):
        write_ome_tiff(tmp_path / "x.ome.tif", np.zeros((4, 4), np.float32), mpp=1.0)
    with pytest.raises(ParameterError, match=r"\(H, W\)"):
        write_ome_tiff(tmp_path / "x.ome.tif", np.zeros((4, 4, 3), np.uint8), mpp=1.0)
    assert list(tmp_path.iterdir()) == []


def test_ome_tiff_failure_leaves_nothing(tmp_path: Path) -> None:
    class Failing(Windowed):
        def __getitem__(self, key: Any) -> np.ndarray:
            if key.start >= 64:
                raise OSError("disk gone")
            return super().__getitem__(key)

    old = tmp_path / "s.ome.tif"
    old.write_bytes(b"old")
    with pytest.raises(OSError, match="disk gone"):
        write_ome_tiff(old, Failing(blobby(100, 40, 3)), mpp=1.0, tile=32)
    assert [p.name for p in tmp_path.iterdir()] == ["s.ome.tif"]  # no temporary files left
    assert old.read_bytes() == b"old"


def test_ome_tiff_legend_channel_and_source(tmp_path: Path) -> None:
    labels = area_labels()  # values 0, 1 and 3: concepts 0 and 2
    colours = np.array([[200, 0, 0], [0, 200, 0], [0, 0, 200]], np.uint8)
    names = ["tumour", "other", "stroma é"]
    path = write_ome_tiff(
        tmp_path / "s.ome.tif",
        labels,
        mpp=0.5,
        names=names,
        colours=colours,
        source="slides/a.svs",
    )
    with tifffile.TiffFile(path) as tif:
        channel = ET.fromstring(tif.ome_metadata).find(".//{*}Pixels/{*}Channel")
        maps = ome_maps(tif)
        np.testing.assert_array_equal(tif.asarray(), labels)
    assert channel is not None and channel.get("Name") == "concept labels"
    assert sorted(maps) == [ome_tiff.LEGEND_NAMESPACE, ome_tiff.SOURCE_NAMESPACE]
    legend = {k: json.loads(v) for k, v in maps[ome_tiff.LEGEND_NAMESPACE].items()}
    assert legend == {
        "0": {"name": "no tissue"},
        "1": {"concept": 0, "name": "tumour", "color": [200, 0, 0]},
        "3": {"concept": 2, "name": "stroma é", "color": [0, 0, 200]},
    }
    assert maps[ome_tiff.SOURCE_NAMESPACE] == {"slide": "slides/a.svs"}

    path = write_ome_tiff(tmp_path / "d.ome.tif", labels, mpp=0.5, channel_name="classes")
    with tifffile.TiffFile(path) as tif:
        channel = ET.fromstring(tif.ome_metadata).find(".//{*}Pixels/{*}Channel")
        maps = ome_maps(tif)
    assert channel is not None and channel.get("Name") == "classes"
    assert list(maps) == [ome_tiff.LEGEND_NAMESPACE]  # no source given
    legend = {k: json.loads(v) for k, v in maps[ome_tiff.LEGEND_NAMESPACE].items()}
    assert legend["3"] == {"concept": 2, "name": "concept 2", "color": palette(3)[2].tolist()}

    with pytest.raises(ParameterError, match="names"):
        write_ome_tiff(tmp_path / "x.ome.tif", labels, mpp=0.5, names=["tumour"])
    with pytest.raises(ParameterError, match="channel_name"):
        write_ome_tiff(tmp_path / "x.ome.tif", labels, mpp=0.5, channel_name=3)  # type: ignore[arg-type]
    assert not (tmp_path / "x.ome.tif").exists()


def test_ome_tiff_opens_in_slide_readers(tmp_path: Path) -> None:
    labels = blobby(600, 900, 7)
    path = write_ome_tiff(
        tmp_path / "s.ome.tif", labels, mpp=0.25, downsample=2, tile=256, source="s.svs"
    )
    tiffslide = pytest.importorskip("tiffslide")
    with tiffslide.TiffSlide(path) as slide:
        assert slide.level_dimensions == ((900, 600), (450, 300), (225, 150))
        assert float(slide.properties["tiffslide.mpp-x"]) == pytest.approx(0.5)
        region = np.asarray(slide.read_region((0, 0), 1, (450, 300), as_array=True))
        np.testing.assert_array_equal(region.reshape(300, 450), labels[::2, ::2])
    openslide = pytest.importorskip("openslide")
    slide = openslide.OpenSlide(path)
    try:
        # OpenSlide's generic TIFF reader sees level 0 only (it does not follow SubIFDs)
        assert slide.level_dimensions[0] == (900, 600)
        assert float(slide.properties["openslide.mpp-x"]) == pytest.approx(0.5)
        rgba = np.asarray(slide.read_region((0, 0), 0, (900, 600)))
        np.testing.assert_array_equal(rgba[..., 0], labels)
    finally:
        slide.close()


# -- GeoJSON ------------------------------------------------------------------------------------


def test_square_with_hole_in_level0_coordinates() -> None:
    labels = np.zeros((10, 12), np.uint8)
    labels[2:8, 3:9] = 1
    labels[4:6, 5:7] = 0
    collection = exact(labels, downsample=4, offset=(100, 50))
    assert collection["type"] == "FeatureCollection"
    (feature,) = collection["features"]
    geometry = feature["geometry"]
    assert geometry["type"] == "Polygon" and len(geometry["coordinates"]) == 2
    shell, hole = (np.array(ring) for ring in geometry["coordinates"])
    assert set(map(tuple, shell)) == {(112, 58), (136, 58), (136, 82), (112, 82)}
    assert set(map(tuple, hole)) == {(120, 66), (128, 66), (128, 74), (120, 74)}
    polygon = shape(geometry)
    assert polygon.is_valid and polygon.area == (36 - 4) * 16


def test_hole_filled_by_another_label() -> None:
    labels = np.zeros((10, 10), np.uint16)
    labels[1:9, 1:9] = 2
    labels[3:6, 3:6] = 7
    found = geometries(exact(labels))
    assert sorted(found) == [2, 7]
    assert len(found[2].interiors) == 1 and found[2].area == 64 - 9
    assert found[7].equals(shapely.box(3, 3, 6, 6))


def test_disjoint_components_make_a_multipolygon() -> None:
    labels = np.zeros((8, 8), np.uint8)
    labels[0:2, 0:3] = 1
    labels[5:8, 4:8] = 1
    labels[5:7, 0:2] = 2
    collection = exact(labels, downsample=2)
    kinds = {f["properties"]["label"]: f["geometry"]["type"] for f in collection["features"]}
    assert kinds == {0: "MultiPolygon", 1: "Polygon"}
    multi = geometries(collection)[1]
    assert len(multi.geoms) == 2 and multi.is_valid and multi.area == (6 + 12) * 4


def test_diagonal_contacts_stay_valid() -> None:
    checker = np.array([[1, 0], [0, 1]], np.uint8)
    (feature,) = exact(checker)["features"]
    assert feature["geometry"]["type"] == "MultiPolygon"  # 4-connected: two squares
    assert shapely.is_valid(shape(feature["geometry"]))
    # a ring whose hole touches the outside at one corner, and an island inside a hole
    ring = np.array(
        [
            [1, 1, 1, 1, 1, 0],
            [1, 0, 0, 0, 1, 0],
            [1, 0, 1, 0, 1, 0],
            [1, 0, 0, 0, 1, 0],
            [1, 1, 1, 1, 0, 0],
            [0, 0, 0, 0, 0, 1],
        ],
        np.uint8,
    )
    for strip_rows in (1, 2, 4096):
        geometry = geometries(exact(ring, strip_rows=strip_rows))[1]
        assert shapely.is_valid(geometry), shapely.is_valid_reason(geometry)
        assert geometry.area == ring.sum()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_geometry_valid_with_exact_area(seed: int) -> None:
    labels = blobby(45, 38, 5, seed=seed)
    downsample = 2.5
    found = geometries(exact(labels, downsample=downsample, offset=(7.0, -3.0)))
    assert sorted(found) == sorted(set(np.unique(labels)) - {0})
    for value, geometry in found.items():
        assert shapely.is_valid(geometry), shapely.is_valid_reason(geometry)
        assert geometry.geom_type in ("Polygon", "MultiPolygon")
        assert geometry.area == pytest.approx((labels == value).sum() * downsample**2)
    union = shapely.union_all(list(found.values()))
    assert union.area == pytest.approx((labels != 0).sum() * downsample**2)


@pytest.mark.parametrize("seed", [0, 3])
def test_strips_give_the_whole_map_result(seed: int) -> None:
    labels = blobby(53, 41, 4, seed=seed)
    whole = geometries(exact(labels, downsample=3, offset=(1, 2), strip_rows=10**6))
    for strip_rows in (1, 2, 3, 7, 16):
        strips = geometries(exact(labels, downsample=3, offset=(1, 2), strip_rows=strip_rows))
        assert sorted(strips) == sorted(whole)
        for value, geometry in strips.items():
            assert shapely.is_valid(geometry), (strip_rows, shapely.is_valid_reason(geometry))
            assert geometry.area == whole[value].area
            assert geometry.symmetric_difference(whole[value]).area == 0
            # no vertex left where the cuts were: the same outlines, point for point
            assert shapely.get_num_coordinates(geometry) == shapely.get_num_coordinates(
                whole[value]
            )
            assert shapely.get_num_geometries(geometry) == shapely.get_num_geometries(whole[value])


def test_cut_edges_are_noded_and_cleaned() -> None:
    ring = np.array([[0, 0], [10, 0], [10, 4], [0, 4], [0, 0]], dtype=float)
    noded = geojson._node_ring(ring, 4.0, np.array([-1.0, 0.0, 3.0, 7.0, 10.0, 12.0]))
    np.testing.assert_array_equal(noded, [[0, 0], [10, 0], [10, 4], [7, 4], [3, 4], [0, 4], [0, 0]])
    np.testing.assert_array_equal(geojson._drop_collinear(noded), ring)
    starts_mid_edge = np.array([[5, 0], [10, 0], [10, 4], [0, 4], [0, 0], [5, 0]], dtype=float)
    np.testing.assert_array_equal(geojson._drop_collinear(starts_mid_edge), ring[[1, 2, 3, 0, 1]])
    above = shapely.box(0, 0, 10, 4)
    below = [shapely.box(3, 4, 7, 9), shapely.box(10, 4, 12, 6)]  # one shares an edge
    joined = geojson._join_at_cut([above, *below], 4.0)
    assert len(joined) == 2 and all(p.is_valid for p in joined)
    assert shapely.union_all(joined).equals(shapely.union_all([above, *below]))
    assert sorted(shapely.get_num_coordinates(joined)) == [5, 9]


def test_tall_region_across_many_strips() -> None:
    labels = np.zeros((31, 11), np.uint8)
    labels[::3, :] = 1  # a grid of lines: one polygon with 10 x 2 holes
    labels[:, [0, 5, 10]] = 1
    labels[10:12, 1:5] = 2  # fills one of the holes
    for strip_rows in (1, 2, 4, 31):
        found = geometries(exact(labels, strip_rows=strip_rows))
        assert found[1].geom_type == "Polygon", strip_rows
        assert len(found[1].interiors) == 20
        assert found[1].is_valid and found[1].area == (labels == 1).sum()
        assert found[2].equals(shapely.box(1, 10, 5, 12))


def test_properties_names_and_colours() -> None:
    labels = np.zeros((6, 6), np.uint16)
    labels[0, 0], labels[2, 2], labels[4, 4] = 1, 3, 300
    collection = label_geojson(labels)
    features = collection["features"]
    assert [f["properties"]["label"] for f in features] == [0, 2, 299]
    for f in features:
        concept = f["properties"]["label"]
        assert f["type"] == "Feature"
        assert f["properties"]["objectType"] == "annotation"
        assert f["properties"]["classification"]["name"] == f"concept {concept}"
        assert f["properties"]["measurements"] == {"concept": concept}  # QuPath keeps these
        colour = f["properties"]["classification"]["color"]
        # the overlay colour of concept c: colourize paints id c with palette row c
        assert colour == colourize(np.array([[concept]]))[0, 0].tolist()
        assert colour == palette(300)[concept].tolist()
    ids = [f["id"] for f in features]
    assert len(set(ids)) == 3 and all(isinstance(i, str) and i for i in ids)

    names = [f"class {c}" for c in range(300)]
    colours = np.zeros((300, 3), np.uint8)
    colours[2] = (1, 2, 3)
    custom = label_geojson(labels, names=names, colours=colours)["features"]
    assert [f["properties"]["classification"]["name"] for f in custom] == [
        "class 0",
        "class 2",
        "class 299",
    ]
    assert custom[1]["properties"]["classification"]["color"] == [1, 2, 3]


def test_geojson_rejects_bad_arguments() -> None:
    labels = np.zeros((5, 5), np.uint8)
    labels[1, 1] = 4
    with pytest.raises(ParameterError, match="names"):
        label_geojson(labels, names=["a", "b"])
    with pytest.raises(ParameterError, match="string"):
        label_geojson(labels, names="abcd")
    with pytest.raises(ParameterError, match="colours"):
        label_geojson(labels, colours=np.zeros((3, 3), np.uint8))
    with pytest.raises(ParameterError, match=r"\(K, 3\)"):
        label_geojson(labels, colours=np.zeros((4, 4), np.uint8))
    with pytest.raises(ParameterError, match="downsample"):
        label_geojson(labels, downsample=0)
    with pytest.raises(ParameterError, match="offset"):
        label_geojson(labels, offset=(1.0, float("nan")))
    with pytest.raises(ParameterError, match="strip_rows"):
        label_geojson(labels, strip_rows=0)
    for tolerance in (-1.0, float("nan")):
        with pytest.raises(ParameterError, match="simplify"):
            label_geojson(labels, simplify=tolerance)
    with pytest.raises(ParameterError, match="slide_id"):
        label_geojson(labels, slide_id=3)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="slide_size width"):
        label_geojson(labels, slide_size=(0, 5))
    with pytest.raises(ParameterError, match=r"\(width, height\)"):
        label_geojson(labels, slide_size=(1, 2, 3))  # type: ignore[arg-type]


def test_no_tissue_gives_no_features() -> None:
    assert label_geojson(np.zeros((4, 4), np.uint8)) == {
        "type": "FeatureCollection",
        "features": [],
    }


def test_feature_ids_unique_per_slide_and_concept() -> None:
    labels = area_labels()  # concepts 0 and 2
    ids = {
        slide: [f["id"] for f in exact(labels, slide_id=slide)["features"]]
        for slide in ("slide-a", "slide-b")
    }
    assert len(set(ids["slide-a"] + ids["slide-b"])) == 4
    assert ids["slide-a"] == [str(uuid.uuid5(geojson._FEATURE_IDS, f"slide-a/{c}")) for c in (0, 2)]
    assert [f["id"] for f in exact(labels, slide_id="slide-a")["features"]] == ids["slide-a"]
    # without a slide id, the ids of earlier versions: the same in every file
    assert [f["id"] for f in exact(labels)["features"]] == [
        str(uuid.uuid5(geojson._FEATURE_IDS, f"label-{c}")) for c in (0, 2)
    ]


def test_geometries_clipped_to_the_slide() -> None:
    labels = np.ones((3, 4), np.uint8)
    labels[:, 2:] = 2
    labels[2, 1:] = 3
    # 4 x 3 label pixels of 2.5 level-0 pixels cover 10 x 7.5; the slide is 9 x 7
    whole = geometries(exact(labels, downsample=2.5))
    assert shapely.total_bounds(list(whole.values())).tolist() == [0, 0, 10, 7.5]
    clipped = geometries(exact(labels, downsample=2.5, slide_size=(9, 7)))
    assert shapely.total_bounds(list(clipped.values())).tolist() == [0, 0, 9, 7]
    slide = shapely.box(0, 0, 9, 7)
    for value, geometry in clipped.items():
        assert geometry.is_valid and geometry.equals(whole[value].intersection(slide))
    assert sum(g.area for g in clipped.values()) == 9 * 7
    # simplified too: inside the slide, still a coverage, the slide's edge kept straight
    labels = smooth(40, 50)
    found = geometries(label_geojson(labels, downsample=2.5, offset=(-1, 0), slide_size=(118, 99)))
    assert shapely.total_bounds(list(found.values())).tolist() == [0, 0, 118, 99]
    assert shapely.coverage_is_valid(list(found.values()))


def test_simplified_outlines_share_edges_and_keep_areas() -> None:
    labels = smooth(60, 70)
    labels[labels == 0] = 5  # tissue everywhere: the concepts must tile the map
    exact_found = geometries(exact(labels, downsample=2))
    exact_vertices = shapely.get_num_coordinates(list(exact_found.values())).sum()
    for tolerance, most_vertices in ((None, 0.85), (2.2, 0.5)):
        found = geometries(label_geojson(labels, downsample=2, simplify=tolerance))
        polygons = list(found.values())
        assert all(shapely.is_valid(polygons)) and shapely.coverage_is_valid(polygons)
        # no overlaps (the areas add up to the union's) and no gaps (the union is the map)
        union = shapely.union_all(polygons)
        assert sum(p.area for p in polygons) == pytest.approx(union.area)
        assert union.equals(shapely.box(0, 0, 140, 120))
        assert shapely.get_num_coordinates(polygons).sum() < most_vertices * exact_vertices
        for value, geometry in found.items():
            assert geometry.area == pytest.approx(exact_found[value].area, rel=0.01)
    # the default tolerance is SIMPLIFY label-map pixels
    assert label_geojson(labels, downsample=2, simplify=2 * geojson.SIMPLIFY) == label_geojson(
        labels, downsample=2
    )


def test_simplification_keeps_small_components_exact() -> None:
    labels = np.ones((30, 30), np.uint8)
    labels[np.add.outer(np.arange(30), np.arange(30)) > 30] = 2  # a diagonal edge
    labels[5, 6] = 3  # a one-pixel speck inside concept 0
    labels[10, 4:6] = 0  # a two-pixel hole
    found = geometries(label_geojson(labels, simplify=1.0))
    assert found[3].equals(shapely.box(6, 5, 7, 6))
    assert any(
        shapely.Polygon(ring).equals(shapely.box(4, 10, 6, 11)) for ring in found[1].interiors
    )
    assert found[1].area == pytest.approx((labels == 1).sum(), rel=0.01)
    exact_vertices = shapely.get_num_coordinates(list(geometries(exact(labels)).values())).sum()
    assert shapely.get_num_coordinates(list(found.values())).sum() < exact_vertices / 2


@pytest.mark.parametrize("seed", [0, 3])
def test_simplified_strips_give_the_whole_map_result(seed: int) -> None:
    labels = smooth(53, 47)
    labels[blobby(53, 47, 2, seed=seed) == 1] = 0  # speckle: many small components
    whole = label_geojson(labels, downsample=3, strip_rows=10**6)
    for strip_rows in (1, 7, 16):
        assert label_geojson(labels, downsample=3, strip_rows=strip_rows) == whole


def test_node_coverage_adds_t_junctions() -> None:
    top = shapely.box(0, 0, 4, 2)  # its lower edge meets two polygons: a T-junction at (2, 2)
    polygons = np.array([top, shapely.box(0, 2, 2, 4), shapely.box(2, 2, 4, 4)])
    assert not shapely.coverage_is_valid(polygons)
    noded = geojson._node_coverage(polygons)
    assert shapely.coverage_is_valid(noded)
    assert [p.equals(q) for p, q in zip(noded, polygons, strict=True)] == [True] * 3
    assert (2.0, 2.0) in set(map(tuple, shapely.get_coordinates(noded[0])))
    assert shapely.get_num_coordinates(noded).tolist() == [6, 5, 5]


def test_write_geojson_matches_label_geojson(tmp_path: Path) -> None:
    labels = blobby(30, 25, 4)
    source = np.memmap(tmp_path / "l.dat", dtype=np.uint8, mode="w+", shape=labels.shape)
    source[:] = labels
    kwargs: dict[str, Any] = {"downsample": 4.0, "offset": (10.5, 20.0), "strip_rows": 4}
    path = write_geojson(tmp_path / "out" / "s.geojson", source, names=["a", "b", "c"], **kwargs)
    text = path.read_text(encoding="utf-8")
    assert "\n" not in text and '": ' not in text and '", ' not in text  # compact
    written = json.loads(text)
    expected = label_geojson(labels, names=["a", "b", "c"], **kwargs)
    for f in (*written["features"], *expected["features"]):
        f.pop("id")
    assert written == json.loads(json.dumps(expected))
    empty = write_geojson(tmp_path / "e.geojson", np.zeros((3, 3), np.uint8))
    assert json.loads(empty.read_text()) == {"type": "FeatureCollection", "features": []}


def test_write_geojson_leaves_nothing_on_error(tmp_path: Path) -> None:
    labels = np.ones((4, 4), np.uint8) * 3
    with pytest.raises(ParameterError):
        write_geojson(tmp_path / "sub" / "s.geojson", labels, names=["only one"])
    assert list(tmp_path.iterdir()) == []


# -- areas --------------------------------------------------------------------------------------


def area_labels() -> np.ndarray:
    labels = np.zeros((3, 5), np.uint8)
    labels[0, :3] = 1  # concept 0: 3 pixels
    labels[1:, 1:5] = 3  # concept 2: 8 pixels, minus one below
    labels[2, 4] = 0
    return labels  # 11 - 1 = 10 tissue pixels: 3 + 7


def test_label_areas_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    labels = area_labels()
    rows = label_areas(
        labels, mpp=0.5, downsample=3, names=["tumour", "other", "stroma"], mpp_source="metadata"
    )
    assert rows == [
        {
            "label": 0,
            "name": "tumour",
            "pixels": 3,
            "area_um2": pytest.approx(6.75),
            "percent_of_tissue": pytest.approx(30.0),
            "mpp_source": "metadata",
        },
        {
            "label": 2,
            "name": "stroma",
            "pixels": 7,
            "area_um2": pytest.approx(15.75),
            "percent_of_tissue": pytest.approx(70.0),
            "mpp_source": "metadata",
        },
    ]
    monkeypatch.setattr(slide_labels, "_COUNT_PIXELS", 1)  # one row per strip
    assert label_areas(labels.astype(np.int64), mpp=0.5, downsample=3) == [
        {**rows[0], "name": "concept 0", "mpp_source": "unknown"},
        {**rows[1], "name": "concept 2", "mpp_source": "unknown"},
    ]
    assert label_areas(np.zeros((2, 2), np.uint16), mpp=1.0) == []


def test_label_areas_from_memmap(tmp_path: Path) -> None:
    labels = blobby(64, 50, 6)
    source = np.memmap(tmp_path / "l.dat", dtype=np.uint8, mode="w+", shape=labels.shape)
    source[:] = labels
    rows = label_areas(source, mpp=0.25, downsample=16)
    counts = np.bincount(labels.ravel(), minlength=6)
    assert [r["label"] for r in rows] == [0, 1, 2, 3, 4]
    assert [r["pixels"] for r in rows] == counts[1:].tolist()
    assert sum(r["percent_of_tissue"] for r in rows) == pytest.approx(100.0)
    assert rows[0]["area_um2"] == pytest.approx(counts[1] * 16.0)


def test_write_area_csv(tmp_path: Path) -> None:
    names = ["tumour", "x, y", "stroma"]
    rows = label_areas(area_labels(), mpp=0.5, downsample=3, names=names, mpp_source="given")
    path = write_area_csv(tmp_path / "areas.csv", rows)
    assert path.read_text(encoding="utf-8") == (
        "label,name,pixels,area_um2,percent_of_tissue,mpp_source\n"
        "0,tumour,3,6.750,30.0000,given\n"
        "2,stroma,7,15.750,70.0000,given\n"
    )
    rows[0]["name"] = "x, y"
    write_area_csv(path, rows)
    assert path.read_text(encoding="utf-8").splitlines()[1] == '0,"x, y",3,6.750,30.0000,given'
    guessed = label_areas(area_labels(), mpp=0.5, mpp_source="objective-power")
    write_area_csv(path, guessed)
    assert [line.split(",")[-1] for line in path.read_text().splitlines()] == [
        "mpp_source",
        "objective-power",
        "objective-power",
    ]
    with pytest.raises(ParameterError, match="area_um2"):
        write_area_csv(tmp_path / "bad.csv", [{"label": 0, "name": "a", "pixels": 1}])
    with pytest.raises(ParameterError, match="mpp_source"):
        write_area_csv(
            tmp_path / "bad.csv", [{k: v for k, v in rows[0].items() if k != "mpp_source"}]
        )
    assert not (tmp_path / "bad.csv").exists()
    assert write_area_csv(tmp_path / "none.csv", []).read_text() == (
        "label,name,pixels,area_um2,percent_of_tissue,mpp_source\n"
    )
    with pytest.raises(ParameterError, match="mpp"):
        label_areas(area_labels(), mpp=float("inf"))
    with pytest.raises(ParameterError, match="mpp_source must be one of metadata, given"):
        label_areas(area_labels(), mpp=1.0, mpp_source="scanner")


def test_import_stays_light() -> None:
    code = (
        "import sys, unseg.io\n"
        "heavy = [m for m in ('tifffile', 'rasterio', 'shapely') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
