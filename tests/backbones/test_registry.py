from __future__ import annotations

import builtins
import dataclasses
import re
import warnings

import pytest
import torch

from unseg import backbones
from unseg.backbones import Backbone, BackboneConfig, BackboneFactory, BackboneInfo, registry
from unseg.errors import ParameterError

EXPECTED = {
    "default": (None, 8),
    "resnet50.tv_in1k": (1024, 16),
    "uni": (1024, 16),
    "prov-gigapath": (1536, 16),
    "ctranspath": (768, 32),
    "phikon": (768, 16),
    "vit_small_patch16_224.dino": (384, 16),
    "efficientnet-lite0": (112, 16),
    "efficientnet-lite2": (120, 16),
    "mit-b0": (160, 16),
    "mit-b1": (320, 16),
}

LISTED = [
    "default", "resnet50.tv_in1k", "resnet50.a1_in1k", "resnet18.a1_in1k",
    "vit_small_patch16_224.dino", "vit_base_patch16_224.dino", "vit_large_patch16_224",
    "uni", "prov-gigapath", "phikon", "ctranspath", "efficientnet-lite0", "efficientnet-lite1",
    "efficientnet-lite2", "mit-b0", "mit-b1", "mit-b2", "mit-b3", "mit-b4", "mit-b5",
]


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


@pytest.mark.parametrize("name", [n for n in LISTED if n not in ("default", "phikon")])
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
    with pytest.raises(ParameterError):
        backbones.create(name)


class Recorded(Backbone):
    """A backbone that records how its factory was called."""

    def __init__(self, name: str, weights: str | None, layer: str | None, made_by: str) -> None:
        self.made_by = made_by
        self.config = BackboneConfig(
            name=name, source="test", layer=layer or "only", channels=2, stride=4,
            size_multiple=4, input_size=16, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
            licence="none", weights=str(weights),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 2, x.shape[2] // 4, x.shape[3] // 4)


def factory(made_by: str) -> BackboneFactory:
    def make(name: str, *, weights: str | None, layer: str | None, device: str) -> Backbone:
        return Recorded(name, weights, layer, made_by)

    return make


def made_by(name: str) -> str:
    built = backbones.create(name)
    assert isinstance(built, Recorded)
    return built.made_by


def suggestions(message: str) -> builtins.list[str]:
    """The names after "Did you mean" in an unknown-name message."""
    match = re.search(r"Did you mean (.*?)\? ", message)
    return match[1].split(", ") if match else []


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made by the test are undone after it (built-in ones stay)."""
    monkeypatch.setattr(registry, "_NAMES", dict(registry._NAMES))
    monkeypatch.setattr(registry, "_PREFIXES", dict(registry._PREFIXES))


def test_register_a_name(isolated) -> None:
    info = BackboneInfo("my-net", "file", 2, 4, "MIT", True, "a test backbone")
    backbones.register("my-net", factory("my-net"), describe=lambda: info)
    built = backbones.create(" My-Net ", weights="w.pth", layer="l1", device="meta")
    assert isinstance(built, Recorded) and built.made_by == "my-net"
    assert (built.name, built.config.weights, built.config.layer) == ("My-Net", "w.pth", "l1")
    assert built.device.type == "meta"  # create moves what the factory built
    assert backbones.list()[-1] == info


def test_register_a_prefix(isolated) -> None:
    backbones.register_prefix("mine:", factory("mine"))
    backbones.register_prefix("mine:special/", factory("special"))
    assert made_by("MINE:a/b") == "mine"
    assert backbones.create("mine:a/b").name == "mine:a/b"
    assert made_by("mine:special/b") == "special"  # the longer prefix wins
    assert [i.name for i in backbones.list()] == LISTED  # a prefix is not listed


def test_a_name_beats_a_prefix(isolated) -> None:
    backbones.register_prefix("mine:", factory("prefix"))
    backbones.register("mine:exact", factory("name"))
    assert made_by("mine:exact") == "name"
    assert made_by("mine:Exact") == "name"
    assert made_by("mine:exact2") == "prefix"


def test_a_name_beats_timm(isolated) -> None:
    backbones.register("resnet18", factory("mine"))
    assert made_by("resnet18") == "mine"


def test_registering_twice_warns(isolated) -> None:
    first, second = factory("first"), factory("second")
    backbones.register("my-net", first)
    backbones.register_prefix("mine:", first)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        backbones.register("MY-NET", first)  # the same registration again is quiet
        backbones.register_prefix("mine:", first)
    with pytest.warns(UserWarning, match="'my-net' is registered twice"):
        backbones.register("my-net", second)
    with pytest.warns(UserWarning, match="'mine:' is registered twice"):
        backbones.register_prefix("mine:", second)
    assert made_by("my-net") == "second" and made_by("mine:x") == "second"


@pytest.mark.parametrize("name", ["", " my-net", "my-net\n", None])
def test_names_are_checked(isolated, name) -> None:
    with pytest.raises(ParameterError, match="non-empty string"):
        backbones.register(name, factory("x"))
    with pytest.raises(ParameterError, match="non-empty string"):
        backbones.register_prefix(name, factory("x"))


@pytest.mark.parametrize(
    ("name", "close"),
    [
        ("resnet50.tv_in1", "resnet50.tv_in1k"),
        ("RESNET50.TV_IN1K", "resnet50.tv_in1k"),
        ("unii", "uni"),
        ("prov-gigapth", "prov-gigapath"),
        ("defualt", "default"),
        ("vit_smal_patch16_224", "vit_small_patch16_224"),  # from timm's names
    ],
)
def test_unknown_name_suggests_close_names(name: str, close: str) -> None:
    with pytest.raises(ParameterError) as info:
        backbones.create(name, weights="random")
    message = str(info.value)
    assert message.startswith(f"unknown backbone {name!r}.")
    assert close in suggestions(message) and len(suggestions(message)) <= 3
    assert "unseg backbones" in message and "local-dir:" in message


def test_unknown_name_suggests_registered_names(isolated) -> None:
    backbones.register("my-special-net", factory("x"))
    with pytest.raises(ParameterError) as info:
        backbones.create("my-specal-net")
    assert suggestions(str(info.value))[0] == "my-special-net"


def test_unknown_name_without_close_names() -> None:
    with pytest.raises(ParameterError) as info:
        backbones.create("qqqqzzzzxxxx")
    assert "Did you mean" not in str(info.value)


def test_list_is_derived_from_the_registrations(isolated) -> None:
    assert [i.name for i in backbones.list()] == LISTED
    calls = []

    def describe() -> BackboneInfo:
        calls.append(1)
        return BackboneInfo("my-net", "file", 2, 4, "MIT", len(calls) > 1, "a test backbone")

    backbones.register("my-alias", factory("x"))  # undescribed: works, not listed
    backbones.register("my-net", factory("x"), describe=describe)
    assert calls == []  # described when listed, not when registered
    first, second = backbones.list()[-1], backbones.list()[-1]
    assert [i.name for i in backbones.list()] == [*LISTED, "my-net"]
    assert not first.weights_available_offline and second.weights_available_offline
