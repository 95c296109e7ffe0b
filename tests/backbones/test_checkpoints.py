from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from unseg import backbones
from unseg.errors import InputError, ParameterError, UnsegError


@pytest.fixture(scope="module")
def original() -> backbones.Backbone:
    return backbones.create("resnet18", weights="random", layer="layer3")


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (2, 48, 64, 3), dtype=np.uint8)


def state(backbone: backbones.Backbone) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in backbone.model.state_dict().items()}


def same_features(path: Path | str, original, images, name: str = "resnet18") -> None:
    loaded = backbones.create(name, weights=str(path), layer="layer3")
    assert torch.equal(loaded.features(images), original.features(images))
    assert loaded.config.weights == str(Path(path).resolve())


def test_pth_file(tmp_path, original, images) -> None:
    torch.save(state(original), tmp_path / "w.pth")
    same_features(tmp_path / "w.pth", original, images)


def test_safetensors_file(tmp_path, original, images) -> None:
    save_file(state(original), str(tmp_path / "w.safetensors"))
    same_features(tmp_path / "w.safetensors", original, images)


def test_nested_and_prefixed(tmp_path, original, images) -> None:
    prefixed = {f"module.{k}": v for k, v in state(original).items()}
    torch.save({"epoch": 3, "state_dict": prefixed}, tmp_path / "a.pt")
    same_features(tmp_path / "a.pt", original, images)
    torch.save({"model": state(original)}, tmp_path / "b.bin")
    same_features(tmp_path / "b.bin", original, images)


def test_checkpoint_with_classifier_loads(tmp_path, original, images) -> None:
    full = timm.create_model("resnet18")  # 1000-class head
    full.load_state_dict(state(original), strict=False)
    assert "fc.weight" in full.state_dict()
    torch.save(full.state_dict(), tmp_path / "full.pth")
    same_features(tmp_path / "full.pth", original, images)


def write_hub_folder(folder: Path, weights: dict[str, torch.Tensor]) -> Path:
    folder.mkdir()
    config = {
        "architecture": "resnet18",
        "num_classes": 0,
        "pretrained_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "license": "mit"},
    }
    (folder / "config.json").write_text(json.dumps(config))
    save_file(weights, str(folder / "model.safetensors"))
    return folder


def test_hub_style_folder(tmp_path, original, images) -> None:
    folder = write_hub_folder(tmp_path / "repo", state(original))
    same_features(folder, original, images)  # weights=folder, named architecture
    local = backbones.create(f"local-dir:{folder}", layer="layer3")
    assert (local.config.mean, local.config.licence) == ((0.5, 0.5, 0.5), "mit")
    x = torch.rand(1, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(local.forward(x), original.forward(x))
    random = backbones.create(f"local-dir:{folder}", weights="random")
    assert random.config.weights == "random"
    with pytest.raises(ParameterError, match="holds its own weights"):
        backbones.create(f"local-dir:{folder}", weights=str(folder / "model.safetensors"))


def test_missing_key_names_the_file_and_key(tmp_path, original) -> None:
    weights = state(original)
    del weights["layer1.0.conv1.weight"]
    torch.save(weights, tmp_path / "broken.pth")
    with pytest.raises(UnsegError, match="broken.pth") as info:
        backbones.create("resnet18", weights=str(tmp_path / "broken.pth"))
    assert "layer1.0.conv1.weight" in str(info.value) and "missing" in str(info.value)


def test_other_architecture_is_refused(tmp_path) -> None:
    other = timm.create_model("resnet34", num_classes=0)
    torch.save(other.state_dict(), tmp_path / "r34.pth")
    with pytest.raises(InputError, match="unexpected keys"):
        backbones.create("resnet18", weights=str(tmp_path / "r34.pth"))


def test_shape_mismatch_is_refused(tmp_path, original) -> None:
    weights = state(original)
    weights["conv1.weight"] = torch.zeros(64, 3, 3, 3)
    torch.save(weights, tmp_path / "shape.pth")
    with pytest.raises(InputError, match="conv1.weight"):
        backbones.create("resnet18", weights=str(tmp_path / "shape.pth"))


def test_unreadable_and_absent_files(tmp_path) -> None:
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="junk.pth"):
        backbones.create("resnet18", weights=str(tmp_path / "junk.pth"))
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(InputError, match="no state dict"):
        backbones.create("resnet18", weights=str(tmp_path / "list.pth"))
    with pytest.raises(InputError, match="not found"):
        backbones.create("resnet18", weights=str(tmp_path / "absent.pth"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="model.safetensors"):
        backbones.create("resnet18", weights=str(tmp_path / "empty"))
