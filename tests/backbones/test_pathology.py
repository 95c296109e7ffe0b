from __future__ import annotations

import dataclasses
import re
import sys

import numpy as np
import pytest
import torch

from unseg import backbones
from unseg.backbones.pathology import MODELS, ConvStem
from unseg.errors import MissingDependencyError


def zeros(h: int, w: int) -> np.ndarray:
    return np.zeros((1, h, w, 3), np.uint8)


def test_uni_random_on_224() -> None:
    b = backbones.create("uni", weights="random")
    assert (b.channels, b.stride, b.config.size_multiple) == (1024, 16, 16)
    assert b.config.mean == (0.485, 0.456, 0.406)
    features = b.features(np.random.default_rng(0).integers(0, 256, (1, 224, 224, 3), np.uint8))
    assert features.shape == (1, 1024, 14, 14) and features.min() >= 0
    assert b.model.blocks[0].ls1.gamma.shape == (1024,)  # init_values=1e-5 builds LayerScale


def test_prov_gigapath_shapes_on_meta() -> None:
    b = backbones.create("prov-gigapath", weights="random", device="meta")
    assert (b.channels, b.stride) == (1536, 16)
    assert len(b.model.blocks) == 40
    assert b.features(zeros(224, 224)).shape == (1, 1536, 14, 14)
    assert b.config.licence == "none (random weights)" and MODELS["prov-gigapath"].licence


@pytest.mark.parametrize(
    ("name", "alias"),
    [
        ("hf_hub:prov-gigapath/prov-gigapath", "prov-gigapath"),
        ("hf-hub:prov-gigapath/prov-gigapath", "prov-gigapath"),
        ("hf-hub:MahmoodLab/UNI", "uni"),
        ("hf_hub:MahmoodLab/UNI", "uni"),
        ("UNI", "uni"),
        ("hf-hub:owkin/phikon", "phikon"),
    ],
)
def test_hub_ids_and_aliases(name: str, alias: str, empty_cache) -> None:
    """Each spelling builds the pathology model (offline: a hub lookup would fail)."""
    if alias == "phikon":
        pytest.importorskip("transformers")
    built = backbones.create(name, weights="random", device="meta")
    expected = backbones.create(alias, weights="random", device="meta")
    assert built.config == dataclasses.replace(expected.config, name=name)
    assert type(built.model) is type(expected.model)


def test_hub_id_keeps_its_name() -> None:
    b = backbones.create("hf_hub:prov-gigapath/prov-gigapath", weights="random", device="meta")
    assert b.config.name == "hf_hub:prov-gigapath/prov-gigapath" and b.channels == 1536


def test_meta_device_needs_random_weights(tmp_path) -> None:
    from unseg.errors import ParameterError

    torch.save({}, tmp_path / "w.pth")
    with pytest.raises(ParameterError, match="meta"):
        backbones.create("uni", weights=str(tmp_path / "w.pth"), device="meta")


def test_ctranspath_architecture() -> None:
    b = backbones.create("ctranspath", weights="random")
    assert (b.channels, b.stride, b.config.layer) == (768, 32, "layers.3")
    assert isinstance(b.model.patch_embed, ConvStem)
    stem_keys = {k for k in b.model.state_dict() if k.startswith("patch_embed.")}
    expected = {"patch_embed.norm.weight", "patch_embed.norm.bias", "patch_embed.proj.6.bias"}
    expected |= {f"patch_embed.proj.{i}.weight" for i in (0, 1, 3, 4, 6)}
    assert expected <= stem_keys
    assert b.model.patch_embed.proj[0].weight.shape == (12, 3, 3, 3)
    assert b.features(zeros(224, 224)).shape == (1, 768, 7, 7)
    assert b.features(zeros(64, 96)).shape == (1, 768, 2, 3)


def old_timm_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """timm 0.5 Swin keys (as in the published ctranspath.pth): downsample ends a stage."""
    old = {}
    for key, value in state.items():
        match = re.match(r"layers\.(\d+)\.downsample\.(.*)", key)
        old[f"layers.{int(match[1]) - 1}.downsample.{match[2]}" if match else key] = value
    old["layers.0.blocks.0.attn.relative_position_index"] = torch.zeros(49, 49, dtype=torch.long)
    return old


def test_ctranspath_loads_an_old_layout_checkpoint(tmp_path) -> None:
    original = backbones.create("ctranspath", weights="random")
    torch.save({"model": old_timm_layout(original.model.state_dict())}, tmp_path / "ct.pth")
    loaded = backbones.create("ctranspath", weights=str(tmp_path / "ct.pth"))
    image = np.random.default_rng(0).integers(0, 256, (1, 64, 64, 3), np.uint8)
    assert torch.equal(loaded.features(image), original.features(image))
    assert loaded.config.licence == MODELS["ctranspath"].licence


def test_phikon_without_transformers(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingDependencyError, match=r"unseg\[hub\]"):
        backbones.create("phikon", weights="random")


def test_phikon_architecture() -> None:
    pytest.importorskip("transformers")
    b = backbones.create("phikon", weights="random")
    assert (b.channels, b.stride) == (768, 16)
    features = b.features(np.random.default_rng(0).integers(0, 256, (1, 32, 48, 3), np.uint8))
    assert features.shape == (1, 768, 2, 3) and features.min() >= 0


def test_phikon_checkpoint_with_pooler_loads(tmp_path) -> None:
    pytest.importorskip("transformers")
    original = backbones.create("phikon", weights="random")
    weights = dict(original.model.state_dict())
    weights["pooler.dense.weight"] = torch.zeros(768, 768)  # published checkpoints may hold it
    torch.save(weights, tmp_path / "phikon.bin")
    loaded = backbones.create("phikon", weights=str(tmp_path / "phikon.bin"))
    image = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3), np.uint8)
    assert torch.equal(loaded.features(image), original.features(image))
