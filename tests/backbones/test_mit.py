"""SegFormer MiT encoders from local checkpoints: both transformers layouts, stages, errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from unseg import backbones
from unseg.backbones.encoder import multiscale
from unseg.backbones.mit import MODELS
from unseg.errors import InputError, MissingWeightsError, ParameterError

transformers = pytest.importorskip("transformers")

# transformers 5's module names -> transformers 4's, the layout of the published checkpoints
# (nvidia/mit-b0 .. b5: segformer.encoder.block.0.0.attention.self.query.weight, ...)
_TO_V4 = (
    (r"^stages\.(\d+)\.patch_embeddings\.", r"encoder.patch_embeddings.\1."),
    (r"^stages\.(\d+)\.blocks\.", r"encoder.block.\1."),
    (r"^stages\.(\d+)\.layer_norm\.", r"encoder.layer_norm.\1."),
    (r"\.attention\.q_proj\.", ".attention.self.query."),
    (r"\.attention\.k_proj\.", ".attention.self.key."),
    (r"\.attention\.v_proj\.", ".attention.self.value."),
    (r"\.attention\.sequence_reduction\.sequence_reduction\.", ".attention.self.sr."),
    (r"\.attention\.sequence_reduction\.layer_norm\.", ".attention.self.layer_norm."),
    (r"\.attention\.o_proj\.", ".attention.output.dense."),
    (r"\.mlp\.fc1\.", ".mlp.dense1."),
    (r"\.mlp\.fc2\.", ".mlp.dense2."),
    (r"\.layernorm_before\.", ".layer_norm_1."),
    (r"\.layernorm_after\.", ".layer_norm_2."),
)


def _classifier(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = MODELS["mit-b1"]
    config = transformers.SegformerConfig(
        hidden_sizes=list(model.hidden_sizes), depths=list(model.depths),
        num_attention_heads=[1, 2, 5, 8], sr_ratios=[8, 4, 2, 1], num_labels=10)
    return transformers.SegformerForImageClassification(config).eval()


def _v4(key: str) -> str:
    for pattern, replacement in _TO_V4:
        key = re.sub(pattern, replacement, key)
    return key


@pytest.mark.parametrize("layout", ["installed", "transformers 4"])
def test_a_classification_checkpoint_loads_in_either_layout(tmp_path, layout) -> None:
    net = _classifier(seed=3)
    state = net.state_dict()
    if layout == "transformers 4":
        inner = {k[len("segformer."):]: v for k, v in state.items() if k.startswith("segformer.")}
        if any(k.startswith("stages.") for k in inner):  # installed transformers is 5
            state = {f"segformer.{_v4(k)}": v for k, v in inner.items()} | {
                k: v for k, v in state.items() if not k.startswith("segformer.")}
            assert "segformer.encoder.block.0.0.attention.self.query.weight" in state
    path = tmp_path / "mit-b1.pth"
    torch.save(state, path)
    backbone = backbones.create("mit-b1", weights=str(path))
    assert (backbone.channels, backbone.stride, backbone.config.layer) == (320, 16, "stage3")
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        expected = net.segformer(pixel_values=x, output_hidden_states=True).hidden_states
        assert torch.allclose(backbone.forward(x), torch.relu(expected[2]), atol=1e-5)
    encoder = multiscale("mit-b1", weights=str(path)).eval()
    assert encoder.channels == (64, 128, 320, 512) and encoder.strides == (4, 8, 16, 32)
    with torch.no_grad():
        for got, want in zip(encoder(x), expected, strict=True):
            assert torch.allclose(got, want, atol=1e-5)


def test_features_of_an_image_and_clear_errors(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    backbone = backbones.create("mit-b0", weights="random", layer="stage4")
    assert backbone.features([np.zeros((64, 96, 3), np.uint8)]).shape == (1, 256, 2, 3)
    with pytest.raises(MissingWeightsError, match="nvidia/mit-b1 is not cached"):
        backbones.create("mit-b1")
    with pytest.raises(ParameterError, match="unknown layer 'stage5'"):
        backbones.create("mit-b1", weights="random", layer="stage5")
    bad = tmp_path / "other.pth"
    torch.save({"segformer.encoder.block.0.0.nonsense.weight": torch.zeros(1)}, bad)
    with pytest.raises(InputError, match="other.pth"):
        backbones.create("mit-b1", weights=str(bad))
    with pytest.raises(InputError, match="weights not found"):
        backbones.create("mit-b1", weights=str(tmp_path / "missing.pth"))
