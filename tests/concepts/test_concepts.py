"""Concept banks: fitting, saving with provenance, loading, validation, published banks."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch

from unseg.backbones.base import Backbone, BackboneConfig
from unseg.concepts import PUBLISHED, ConceptBank, fit_bank, load_bank
from unseg.concepts.fit import Reservoir, tile_starts, tiles
from unseg.concepts.published import convert_joblib
from unseg.errors import InputError, ParameterError, UnsegError


class MeanColour(Backbone):
    """A tiny test backbone: each 4x4 cell's mean RGB (C=3, stride 4)."""

    def __init__(self, name: str = "mean-colour") -> None:
        self.config = BackboneConfig(name=name, source="embedded", layer="pool", channels=3,
                                     stride=4, size_multiple=4, input_size=16, mean=(0, 0, 0),
                                     std=(1, 1, 1), licence="none", weights="none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(x, 4)


def colour_tiles(colours: list[tuple[int, int, int]], n: int, size: int = 16) -> list[np.ndarray]:
    return [np.full((size, size, 3), colours[i % len(colours)], np.uint8) for i in range(n)]


def test_tiles_cover_the_image_and_pad_small_ones() -> None:
    assert tile_starts(10, 4) == [0, 3, 6]
    assert tile_starts(8, 4) == [0, 4]
    assert tile_starts(3, 4) == [0]
    image = np.arange(10 * 7).reshape(10, 7).astype(np.uint8)
    parts = list(tiles(image, 4))
    assert len(parts) == 3 * 2 and all(p.shape == (4, 4) for p in parts)
    covered = np.zeros_like(image, bool)
    for y in tile_starts(10, 4):
        for x in tile_starts(7, 4):
            covered[y : y + 4, x : x + 4] = True
    assert covered.all()
    assert next(tiles(np.zeros((2, 3, 3), np.uint8), 4)).shape == (4, 4, 3)


def test_reservoir_is_bounded_and_uniform() -> None:
    counts = np.zeros(100)
    for seed in range(300):
        reservoir = Reservoir(10, np.random.default_rng(seed))
        for start in range(0, 100, 7):
            reservoir.add(np.arange(start, min(start + 7, 100), dtype=np.float32)[:, None])
        sample = reservoir.sample()
        assert sample.shape == (10, 1) and len(np.unique(sample)) == 10
        counts[sample[:, 0].astype(int)] += 1
    assert counts.min() > 10 and counts.max() < 60  # each row kept with p = 0.1: 30 expected


def test_fit_bank_finds_the_colour_concepts_and_records_provenance(tmp_path: Path) -> None:
    colours = [(250, 20, 20), (20, 250, 20), (20, 20, 250)]
    bank = fit_bank(MeanColour(), colour_tiles(colours, 12), ks=(3, 2), max_vectors=8)
    assert bank.ks == [2, 3]
    centres = bank.get(3) * 1.0
    expected = np.array(colours) / 255.0
    assert np.allclose(np.sort(centres, axis=0), np.sort(expected, axis=0), atol=1e-3)
    assert bank.fitted_on == {"weights": "none", "images": 12, "tiles": 12, "tile_size": 16,
                              "vectors_clustered": 8, "random_state": 0}
    path = bank.save(tmp_path / "bank.npz")
    loaded = ConceptBank.load(path)
    assert loaded.backbone == "mean-colour" and loaded.layer == "pool"
    assert np.array_equal(loaded.get(3), bank.get(3))
    assert json.loads(str(np.load(path)["provenance"]))["fitted_on"]["tiles"] == 12
    again = fit_bank(MeanColour(), colour_tiles(colours, 12), ks=(3, 2), max_vectors=8)
    assert np.array_equal(again.get(3), bank.get(3))  # seeded


def test_fit_bank_needs_enough_tiles_and_a_valid_tile_size() -> None:
    with pytest.raises(UnsegError, match="needs at least 5 tiles, got 2"):
        fit_bank(MeanColour(), colour_tiles([(0, 0, 0)], 2), ks=(5,))
    with pytest.raises(ParameterError, match="multiple of 4"):
        fit_bank(MeanColour(), colour_tiles([(0, 0, 0)], 2), ks=(1,), tile_size=10)


def test_bank_checks_the_backbone() -> None:
    bank = ConceptBank(centres={2: np.ones((2, 3), np.float32)}, backbone="mean-colour")
    bank.check(MeanColour())
    with pytest.raises(UnsegError, match="fitted on features of mean-colour, not other"):
        bank.check(MeanColour("other"))
    wide = ConceptBank(centres={2: np.ones((2, 5), np.float32)}, backbone="mean-colour")
    with pytest.raises(UnsegError, match="5-dimensional concepts .* gives 3 channels"):
        wide.check(MeanColour())
    with pytest.raises(ParameterError, match="no bank of k=7; it holds k = 2"):
        bank.get(7)


def test_bad_bank_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nothing.npz: concept bank not found"):
        load_bank(tmp_path / "nothing.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(InputError, match="junk.npz: not a concept bank file"):
        load_bank(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", weights=np.ones(3))
    with pytest.raises(InputError, match="other.npz: no concept arrays"):
        load_bank(tmp_path / "other.npz")


def test_published_bank_from_a_repository_joblib_file(tmp_path: Path, monkeypatch) -> None:
    bank = PUBLISHED["tcga-uni"]
    centres = {k: np.random.default_rng(k).random((k, 1024)).astype(np.float32) for k in (8, 16)}
    joblib.dump(centres, tmp_path / "uni.joblib")
    converted = convert_joblib(tmp_path / "uni.joblib", tmp_path / "cache" / "uni.npz", bank)
    monkeypatch.setenv("UNSEG_CONCEPTS_DIR", str(tmp_path / "cache"))
    loaded = load_bank("tcga-uni")
    assert loaded.path == converted and loaded.ks == [8, 16]
    assert loaded.backbone == "uni" and loaded.source == "published:tcga-uni"
    assert np.array_equal(loaded.get(16), centres[16])


def test_published_bank_offline_says_where_it_looked(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("UNSEG_CONCEPTS_DIR", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr("unseg.concepts.published.REPOSITORY", "http://127.0.0.1:9/none")
    with pytest.raises(UnsegError, match=r"tcga-resnet50 \(resnet50-layer3.npz\) is not in"):
        load_bank("tcga-resnet50")


@pytest.mark.parametrize(
    ("name", "backbone", "channels", "ks"),
    [
        ("tcga-resnet50", "resnet50.tv_in1k", 1024, [16, 32, 64, 128, 256]),
        ("tcga-uni", "uni", 1024, [8, 16, 32, 64, 128, 256]),
        ("tcga-prov-gigapath", "prov-gigapath", 1536, [8, 16, 32, 64, 128, 256]),
    ],
)
def test_the_real_published_banks_load_by_name_and_path(
    shared_data: Path, monkeypatch, name: str, backbone: str, channels: int, ks: list[int]
) -> None:
    folder = shared_data / "fseg-concept-banks"
    monkeypatch.setenv("UNSEG_CONCEPTS_DIR", str(folder))
    by_name = load_bank(name)
    by_path = load_bank(folder / PUBLISHED[name].file)
    for bank in (by_name, by_path):
        assert bank.backbone == backbone and bank.channels == channels and bank.ks == ks
    assert np.array_equal(by_name.get(16), by_path.get(16))


@pytest.mark.parametrize(
    ("name", "backbone"),
    [("tcga-resnet50", "resnet50.tv_in1k"), ("tcga-uni", "uni"),
     ("tcga-prov-gigapath", "prov-gigapath")],
)
def test_the_real_published_banks_fit_their_architectures(
    shared_data: Path, monkeypatch, name: str, backbone: str
) -> None:
    from unseg import backbones

    monkeypatch.setenv("UNSEG_CONCEPTS_DIR", str(shared_data / "fseg-concept-banks"))
    bank = load_bank(name)
    model = backbones.create(backbone, weights="random", device="meta")  # shapes only
    bank.check(model)
    other = backbones.create("vit_small_patch16_224", weights="random", device="meta")
    with pytest.raises(UnsegError, match="384 channels"):
        bank.check(other)
