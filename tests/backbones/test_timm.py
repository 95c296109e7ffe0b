from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

from unseg import backbones
from unseg.backbones.timm_backbones import ViTBackbone, tokens_to_grid, wrap
from unseg.errors import ParameterError, UnsegError


def image_batch(n: int, h: int, w: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_resnet18_layer3() -> None:
    b = backbones.create("resnet18", weights="random", layer="layer3")
    assert (b.channels, b.stride, b.config.size_multiple) == (256, 16, 16)
    features = b.features(image_batch(2, 64, 96))
    assert features.shape == (2, 256, 4, 6)
    assert features.dtype == torch.float32 and features.min() >= 0
    cfg = b.config
    assert (cfg.source, cfg.weights, cfg.layer) == ("timm", "random", "layer3")
    assert cfg.licence and cfg.mean == (0.485, 0.456, 0.406)


def test_resnet50_default_layer_is_layer3() -> None:
    b = backbones.create("resnet50.tv_in1k", weights="random")
    assert (b.config.layer, b.channels, b.stride) == ("layer3", 1024, 16)
    assert b.features(image_batch(1, 64, 64)).shape == (1, 1024, 4, 4)


def test_other_layers_and_unknown_layer() -> None:
    b = backbones.create("resnet18", weights="random", layer="layer2")
    assert (b.channels, b.stride) == (128, 8)
    with pytest.raises(ParameterError, match="layer1, layer2, layer3, layer4"):
        backbones.create("resnet18", weights="random", layer="layer7")


def test_stage_output_matches_timm_features_only() -> None:
    b = backbones.create("resnet18", weights="random", layer="layer3")
    reference = timm.create_model("resnet18", features_only=True, out_indices=(3,))
    reference.load_state_dict(b.model.state_dict(), strict=False)
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(b.forward(x), torch.relu(reference.eval()(x)[0]))


def test_vit_tiny_non_square() -> None:
    b = backbones.create("vit_tiny_patch16_224", weights="random")
    assert (b.channels, b.stride, b.config.size_multiple) == (192, 16, 16)
    assert b.config.layer == "blocks.11"
    features = b.features(image_batch(2, 32, 48))
    assert features.shape == (2, 192, 2, 3)
    assert features.min() >= 0


def small_vit_with_registers() -> torch.nn.Module:
    return timm.models.VisionTransformer(
        img_size=28, patch_size=14, embed_dim=32, depth=2, num_heads=2, reg_tokens=4,
        num_classes=0, dynamic_img_size=True,
    ).eval()


def test_vit_prefix_tokens_are_removed() -> None:
    model = small_vit_with_registers()
    assert model.num_prefix_tokens == 5  # class token + 4 registers
    b = wrap(
        "tiny-reg", model, layer=None, source="timm", weights="random", licence="none",
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), input_size=28,
    )
    assert isinstance(b, ViTBackbone)
    x = torch.rand(1, 3, 42, 70)  # 3 x 5 patches
    seen = []
    model.blocks[-1].register_forward_hook(lambda _m, _i, out: seen.append(out))
    with torch.inference_mode():
        model(x)
        tokens = seen[0]  # the last block's output, before the final norm
        assert tokens.shape[1] == 5 + 3 * 5
        expected = torch.relu(tokens[:, 5:]).transpose(1, 2).reshape(1, 32, 3, 5)
        assert torch.allclose(b.forward(x), expected, atol=1e-6)


def test_vit_keys_are_the_key_projection_of_the_chosen_block_signs_kept() -> None:
    model = small_vit_with_registers()
    b = wrap(
        "tiny-reg", model, layer=None, source="timm", weights="random", licence="none",
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), input_size=28,
    )
    assert isinstance(b, ViTBackbone)
    x = torch.rand(2, 3, 42, 70)  # 3 x 5 patches
    inputs = []
    model.blocks[-1].register_forward_hook(lambda _m, inp, _o: inputs.append(inp[0]))
    with torch.inference_mode():
        model(x)
        block = model.blocks[-1]
        qkv = block.attn.qkv(block.norm1(inputs[0]))  # (B, 5 + 15, 3 * 32)
        expected = qkv[:, 5:, 32:64].transpose(1, 2).reshape(2, 32, 3, 5)
        keys = b.keys(x)
        assert keys.shape == (2, 32, 3, 5)
        assert torch.allclose(keys, expected, atol=1e-5)
        assert keys.min() < 0  # signs kept, unlike the block outputs
        assert not torch.allclose(keys.clamp_min(0), b.forward(x), atol=1e-3)
    first = wrap(
        "tiny-reg", model, layer="blocks.0", source="timm", weights="random", licence="none",
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), input_size=28,
    )
    assert not torch.allclose(first.keys(x), keys)  # the chosen block's keys
    images = np.random.default_rng(0).integers(0, 256, (1, 28, 42, 3), dtype=np.uint8)
    assert b.key_features(images).shape == (1, 32, 2, 3)


def test_timm_registers_model_by_name() -> None:
    b = backbones.create("vit_small_patch14_reg4_dinov2", weights="random")
    assert (b.channels, b.stride) == (384, 14)
    assert b.model.num_prefix_tokens == 5
    assert b.features(image_batch(1, 28, 42)).shape == (1, 384, 2, 3)


def test_vit_layers() -> None:
    b = backbones.create("vit_tiny_patch16_224", weights="random", layer="blocks.0")
    assert b.config.layer == "blocks.0"
    assert b.features(image_batch(1, 32, 32)).shape == (1, 192, 2, 2)
    with pytest.raises(ParameterError, match="blocks.11"):
        backbones.create("vit_tiny_patch16_224", weights="random", layer="layer3")


def test_tokens_to_grid_checks_the_count() -> None:
    assert tokens_to_grid(torch.zeros(1, 6, 4), 2, 3).shape == (1, 4, 2, 3)
    with pytest.raises(UnsegError, match="patch tokens"):
        tokens_to_grid(torch.zeros(1, 7, 4), 2, 3)


def test_size_must_be_multiple_of_patch() -> None:
    b = backbones.create("vit_tiny_patch16_224", weights="random")
    with pytest.raises(ParameterError, match="multiples of 16"):
        b.features(image_batch(1, 40, 48))
    assert b.valid_size(44, 50) == (48, 48)


def test_random_weights_are_seeded_and_leave_the_global_generator_alone() -> None:
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = backbones.create("resnet18", weights="random")
    assert torch.equal(torch.rand(3), expected_next)
    second = backbones.create("resnet18", weights="random")
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert torch.equal(first.features([image]), second.features([image]))
