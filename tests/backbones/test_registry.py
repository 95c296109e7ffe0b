from __future__ import annotations

import dataclasses

import pytest

from unseg import backbones
from unseg.backbones import BackboneInfo

EXPECTED = {
    "default": (None, 8),
    "resnet50.tv_in1k": (1024, 16),
    "uni": (1024, 16),
    "prov-gigapath": (1536, 16),
    "ctranspath": (768, 32),
    "phikon": (768, 16),
    "vit_small_patch16_224.dino": (384, 16),
}


def test_list_holds_the_named_backbones(empty_cache) -> None:
    infos = {info.name: info for info in backbones.list()}
    for name, (channels, stride) in EXPECTED.items():
        info = infos[name]
        assert isinstance(info, BackboneInfo)
        assert info.stride == stride
        if channels is not None:
            assert info.channels == channels
        assert info.licence and info.description and info.source
    assert infos["default"].channels == backbones.create("default").channels
    assert infos["default"].weights_available_offline
    assert not infos["uni"].weights_available_offline
    assert not infos["resnet50.tv_in1k"].weights_available_offline
    assert infos["uni"].licence == "CC-BY-NC-ND-4.0"
    assert infos["prov-gigapath"].licence == "Apache-2.0"


@pytest.mark.parametrize("name", [n for n in EXPECTED if n not in ("default", "phikon")])
def test_listed_shapes_match_the_built_models(name: str) -> None:
    info = {i.name: i for i in backbones.list()}[name]
    built = backbones.create(name, weights="random", device="meta")
    assert (built.channels, built.stride) == (info.channels, info.stride)


def test_configs_are_frozen() -> None:
    cfg = backbones.create("default").config
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.channels = 3  # type: ignore[misc]


def test_device_is_carried(empty_cache) -> None:
    b = backbones.create("resnet18", weights="random", device="meta")
    assert b.device.type == "meta"
    assert next(b.model.parameters()).device.type == "meta"


@pytest.mark.parametrize("name", ["", "   "])
def test_empty_name(name: str) -> None:
    from unseg.errors import ParameterError

    with pytest.raises(ParameterError):
        backbones.create(name)
