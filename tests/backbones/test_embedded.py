from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from unseg import backbones
from unseg.backbones import embedded
from unseg.data.synthetic import blobs, he_tile, quadrants
from unseg.errors import ParameterError
from unseg.io import read_image


@pytest.fixture(scope="module")
def default() -> backbones.Backbone:
    return backbones.create("default")


def cell_majority(mask: np.ndarray, stride: int = 8) -> np.ndarray:
    """Majority class of each stride x stride cell of a mask whose sides are multiples of it."""
    h, w = mask.shape
    cells = mask.reshape(h // stride, stride, w // stride, stride).transpose(0, 2, 1, 3)
    cells = cells.reshape(h // stride, w // stride, -1)
    counts = np.stack([(cells == c).sum(-1) for c in range(mask.max() + 1)], -1)
    return counts.argmax(-1)


def channel(features: torch.Tensor, name: str) -> np.ndarray:
    return features[0, embedded.CHANNEL_NAMES.index(name)].numpy()


def test_shape_dtype_non_negative(default: backbones.Backbone) -> None:
    images = np.random.default_rng(0).integers(0, 256, (2, 64, 48, 3), dtype=np.uint8)
    features = default.features(images)
    assert features.shape == (2, len(embedded.CHANNEL_NAMES), 8, 6)
    assert features.dtype == torch.float32
    assert torch.isfinite(features).all()
    assert features.min() >= 0


def test_real_images_give_non_negative_features(default: backbones.Backbone,
                                                shared_data: Path) -> None:
    # smoothing non-negative maps leaves round-off below zero unless it is clipped
    paths = sorted((shared_data / "wsss4luad-val" / "img").glob("*.png"))
    images = np.stack([np.asarray(Image.fromarray(read_image(p)).resize((224, 224),
                                                                      Image.Resampling.BILINEAR))
                       for p in paths])
    assert default.features(images).min() >= 0


def test_config_is_complete(default: backbones.Backbone) -> None:
    cfg = default.config
    assert (cfg.name, cfg.source, cfg.weights) == ("default", "embedded", "none")
    assert cfg.channels == default.channels == len(embedded.CHANNEL_NAMES)
    assert 48 <= cfg.channels <= 96
    assert cfg.stride == cfg.size_multiple == default.stride == 8
    assert cfg.licence and cfg.layer == "handcrafted"


def test_deterministic(default: backbones.Backbone) -> None:
    image, _ = he_tile(64, random_state=3)
    assert torch.equal(default.features([image]), backbones.create("default").features([image]))


def test_grayscale_and_16_bit(default: backbones.Backbone) -> None:
    gray = np.random.default_rng(1).integers(0, 256, (32, 40), dtype=np.uint8)
    from_gray = default.features([gray])
    assert from_gray.shape == (1, default.channels, 4, 5)
    as_rgb = default.features([np.repeat(gray[..., None], 3, 2)])
    assert torch.allclose(from_gray, as_rgb)
    wide = gray.astype(np.uint16) * 257  # the same image in 16 bits
    assert torch.allclose(default.features([wide]), from_gray, atol=1e-4)


@pytest.mark.parametrize("shape", [(60, 48, 3), (64, 50), (4, 8, 3)])
def test_sizes_not_multiple_of_8_are_refused(default: backbones.Backbone, shape) -> None:
    with pytest.raises(ParameterError, match="multiples of 8"):
        default.features([np.zeros(shape, np.uint8)])


def test_mixed_sizes_are_refused(default: backbones.Backbone) -> None:
    with pytest.raises(ParameterError, match="one size"):
        default.features([np.zeros((16, 16, 3), np.uint8), np.zeros((16, 24, 3), np.uint8)])


def test_no_weights_and_one_layer() -> None:
    with pytest.raises(ParameterError, match="no weights"):
        backbones.create("default", weights="random")
    with pytest.raises(ParameterError, match="one layer"):
        backbones.create("default", layer="layer3")


def test_dark_blobs_light_up_nuclear_channels(default: backbones.Backbone) -> None:
    image, mask = blobs(128, n_blobs=6, random_state=0)
    features = default.features([image])
    cells = cell_majority(mask)
    for name in ("haem", "darkness", "loghaem.blob4@8", "tissue"):
        values = channel(features, name)
        assert values[cells == 1].mean() > 2 * values[cells == 0].mean(), name


def test_he_tile_known_answers(default: backbones.Backbone) -> None:
    image, mask = he_tile(256, random_state=0)  # 0 glass, 1 stroma, 2 nuclei
    features = default.features([image])
    cells = cell_majority(mask)
    tissue = channel(features, "tissue")
    stained = (mask > 0).reshape(32, 8, 32, 8).any(axis=(1, 3))
    pure_glass = ~stained  # cells without one tissue pixel
    assert pure_glass.sum() > 10
    assert tissue[pure_glass].max() < 0.1 * tissue[cells > 0].mean()
    assert np.median(tissue[cells == 0]) < 0.1 * tissue[cells > 0].mean()
    hue = channel(features, "hfrac@8")
    assert hue[cells == 2].mean() > 1.5 * hue[cells == 1].mean()  # nuclei more purple
    assert channel(features, "eosin")[cells == 1].mean() > channel(features, "eosin")[
        cells == 0
    ].mean()


def test_thin_dark_lines_give_valley_responses(default: backbones.Backbone) -> None:
    image = np.full((64, 64), 220, np.uint8)
    image[:, 30:33] = 60  # a dark vertical vessel, 3 px wide, in cells 3 and 4
    valley = channel(default.features([image]), "lightness.valley2")
    assert valley[:, 3:5].mean() > 10 * valley[:, :2].mean()


def test_stored_scales_match_calibration() -> None:
    stored = np.array(embedded._CALIBRATION_STD)
    np.testing.assert_allclose(stored, embedded.calibrate(), rtol=1e-3)


def test_docstring_table_matches_the_code() -> None:
    """Each group row of the module docstring's table gives the group's channel count and weight."""
    lines = embedded.__doc__.splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("=====")]
    rows = {}
    for line in lines[rules[0] : rules[-1]]:
        words = line.split()
        if words and words[0] in embedded.GROUP_WEIGHTS and not line.startswith(" "):
            rows[words[0]] = (int(words[-2]), float(words[-1]))
    counts = {g: sum(1 for h, _ in embedded.CHANNELS_AND_GROUPS if h == g)
              for g in embedded.GROUP_WEIGHTS}
    assert rows == {g: (counts[g], embedded.GROUP_WEIGHTS[g]) for g in embedded.GROUP_WEIGHTS}
    assert sum(counts.values()) == len(embedded.CHANNEL_NAMES)
    assert f"{len(embedded.CHANNEL_NAMES)} channels in {len(counts)} groups" in embedded.__doc__


def test_group_weights_set_the_scales() -> None:
    scales = embedded.channel_scales().numpy()
    std = np.array(embedded._CALIBRATION_STD)
    for group, weight in embedded.GROUP_WEIGHTS.items():
        members = [i for i, (g, _) in enumerate(embedded.CHANNELS_AND_GROUPS) if g == group]
        np.testing.assert_allclose(scales[members] * std[members] * np.sqrt(len(members)),
                                   weight, rtol=1e-6)


def test_quadrant_colours_land_in_their_opponent_channels(default: backbones.Backbone) -> None:
    image, _ = quadrants(64)  # red, green / blue, yellow
    features = default.features([image])

    def means(name: str) -> np.ndarray:
        v = channel(features, name)
        return np.array([v[:4, :4].mean(), v[:4, 4:].mean(), v[4:, :4].mean(), v[4:, 4:].mean()])

    assert means("a-").argmax() == 1  # green
    assert means("b-").argmax() == 2 and means("b-")[[0, 1, 3]].max() < 0.01  # only blue
    assert means("b+").argmax() == 3  # yellow
    assert means("a+")[0] > 10 * means("a+")[[1, 3]].max()  # red, not green or yellow


def test_hue_and_nuclear_texture_ignore_staining_strength(default: backbones.Backbone) -> None:
    image, mask = he_tile(256, random_state=0)
    od = -np.log((image.astype(float) + 1) / 256)
    faint = (256 * np.exp(-0.6 * od) - 1).clip(0, 255).astype(np.uint8)  # 60% of the stain
    strong, weak = default.features([image]), default.features([faint])
    tissue = cell_majority(mask) > 0

    def change(name: str) -> float:
        a, b = channel(strong, name)[tissue].mean(), channel(weak, name)[tissue].mean()
        return abs(a - b) / a

    assert change("haem") > 0.3  # the density follows the stain ...
    assert change("hfrac@8") < 0.15  # ... its hue does not


def test_fseg_with_the_default_backbone_finds_glass_and_stroma() -> None:
    from unseg import methods
    from unseg.eval import evaluate

    tiles = [he_tile(128, random_state=s) for s in range(4)]
    segmenter = methods.create("fseg", k=3, tile_size=32).fit([im for im, _ in tiles])
    preds = [segmenter.predict(im) for im, _ in tiles]
    result = evaluate(range(4), lambda i: (preds[i], tiles[i][1]), match="hungarian",
                      scope="dataset")
    assert result.per_class[0]["iou"] > 0.8  # glass
    assert result.per_class[1]["iou"] > 0.6  # stroma


def test_large_images_are_computed_in_tiles_with_the_same_features() -> None:
    from unseg.backbones.embedded import MARGIN, TILE, features

    torch.manual_seed(0)
    x = torch.rand(1, 3, 2 * TILE + 3 * MARGIN, TILE + 2 * MARGIN + 8)  # tiled along both axes
    tiled = backbones.create("default").forward(x)
    assert torch.equal(tiled, features(x))


@pytest.mark.parametrize("order", [0, 1, 2])
@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_filters_are_the_convolutions_with_replicated_borders(order: int, sigma: float) -> None:
    import torch.nn.functional as F

    x = torch.rand(2, 3, 23, 31, generator=torch.Generator().manual_seed(order))
    kernel = embedded._gaussian(sigma, order, x.device)
    r = kernel.numel() // 2
    padded = F.pad(x, (r, r, r, r), mode="replicate")
    expected_w = F.conv2d(padded[:, :, r:-r].reshape(6, 1, 23, -1), kernel.view(1, 1, 1, -1))
    expected_h = F.conv2d(padded[:, :, :, r:-r].reshape(6, 1, -1, 31), kernel.view(1, 1, -1, 1))
    torch.testing.assert_close(embedded._filter(x, kernel, -1), expected_w.view(2, 3, 23, 31))
    torch.testing.assert_close(embedded._filter(x, kernel, -2), expected_h.view(2, 3, 23, 31))


def test_texture_of_a_ramp() -> None:
    """Away from the borders a ramp of slope 0.5 has gradient 0.5 and a local standard
    deviation of 0.5 (a unit Gaussian window), both channels of the batch alike."""
    y, x = torch.meshgrid(torch.arange(40.0), torch.arange(40.0), indexing="ij")
    ramp = 0.3 * x + 0.4 * y
    found = embedded._texture(torch.stack([ramp, ramp / 10])[None])
    for response in ("grad", "std"):
        core = found[response][0, :, 10:30, 10:30]
        # sampled Gaussian kernels truncated at 3 sigma: right to 1%
        torch.testing.assert_close(core[0], torch.full((20, 20), 0.5), atol=0.005, rtol=0)
        torch.testing.assert_close(core[1], torch.full((20, 20), 0.05), atol=0.0005, rtol=0)
