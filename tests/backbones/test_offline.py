from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from unseg import backbones
from unseg.errors import MissingWeightsError, ParameterError

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def put_in_hf_cache(cache: Path, repo: str, files: dict[str, dict[str, torch.Tensor]]) -> None:
    """Lay files out as huggingface_hub's cache does (refs/main -> snapshots/<commit>/...)."""
    root = cache / ("models--" + repo.replace("/", "--"))
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(COMMIT)
    snapshot = root / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for name, weights in files.items():
        save_file(weights, str(snapshot / name))


def test_timm_model_not_cached(empty_cache) -> None:
    with pytest.raises(MissingWeightsError) as info:
        backbones.create("resnet50.tv_in1k")
    message = str(info.value)
    assert "resnet50.tv_in1k" in message
    assert str(empty_cache / "hf" / "hub") in message
    assert str(empty_cache / "torch" / "hub" / "checkpoints") in message
    assert "default" in message and "weights=" in message


def test_uni_not_cached(empty_cache) -> None:
    with pytest.raises(MissingWeightsError) as info:
        backbones.create("uni")
    message = str(info.value)
    assert "uni" in message and str(empty_cache / "hf" / "hub") in message
    assert "default" in message and "gated" in message


def test_ctranspath_needs_its_file(empty_cache) -> None:
    with pytest.raises(MissingWeightsError) as info:
        backbones.create("ctranspath")
    message = str(info.value)
    assert "ctranspath.pth" in message and "weights=PATH" in message
    assert "TransPath" in message and "default" in message


def test_unknown_hub_repo_offline(empty_cache) -> None:
    with pytest.raises(MissingWeightsError, match="config.json"):
        backbones.create("hf-hub:someone/some-model")


def test_unknown_name_says_where_names_are_listed() -> None:
    for name in ("nonexistent-model-xyz", "resnet50.no_such_tag_", "a/b"):
        with pytest.raises(ParameterError, match="unseg backbones"):
            backbones.create(name, weights="random")


def test_no_silent_fallback_for_pretrained_of_untagged_model(empty_cache) -> None:
    with pytest.raises(MissingWeightsError, match="resnet18"):
        backbones.create("resnet18")


def test_pretrained_weights_from_the_cache(empty_cache) -> None:
    """A cached timm checkpoint loads offline, and list() reports it as available."""
    assert not {i.name: i for i in backbones.list()}["resnet18.a1_in1k"].weights_available_offline
    reference = backbones.create("resnet18", weights="random")
    put_in_hf_cache(
        empty_cache / "hf" / "hub", "timm/resnet18.a1_in1k",
        {"model.safetensors": dict(reference.model.state_dict())},
    )
    cached = backbones.create("resnet18.a1_in1k")
    assert cached.config.weights == "pretrained" and cached.config.licence == "apache-2.0"
    image = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    assert torch.equal(cached.features(image), reference.features(image))
    assert {i.name: i for i in backbones.list()}["resnet18.a1_in1k"].weights_available_offline


def test_cached_uni_loads(empty_cache) -> None:
    reference = backbones.create("uni", weights="random", device="meta")
    shapes = {k: v.shape for k, v in reference.model.state_dict().items()}
    assert shapes["pos_embed"] == (1, 197, 1024)
    assert "blocks.0.ls1.gamma" in shapes  # LayerScale from init_values
