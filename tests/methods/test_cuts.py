"""cuts: training, seeds, resume, the three clusterings, the hierarchy, the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from unseg import methods
from unseg.cli.main import main
from unseg.errors import ParameterError
from unseg.eval import confusion_matrix, match
from unseg.eval.metrics import pixel_accuracy
from unseg.io import read_image, read_label_map, write_image

QUICK = {"embedding_dim": 8, "crop_size": 32, "anchors_per_crop": 8, "batch_size": 4,
         "n_landmarks": 150, "patience": None}


def two_colours(seed: int, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """A red disc on a blue background, with noise, and its mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.integers(size // 3, 2 * size // 3, 2)
    truth = ((yy - cy) ** 2 + (xx - cx) ** 2 < (size // 4) ** 2).astype(int)
    colours = np.array([[40, 70, 200], [210, 50, 40]])
    image = np.clip(colours[truth] + rng.normal(0, 6, (size, size, 3)), 0, 255)
    return image.astype(np.uint8), truth


@pytest.fixture(scope="module")
def scenes() -> list[tuple[np.ndarray, np.ndarray]]:
    return [two_colours(i) for i in range(8)]


@pytest.fixture(scope="module")
def fitted(scenes) -> methods.Segmenter:
    return methods.create("cuts", epochs=2, **QUICK).fit([s[0] for s in scenes])


@pytest.mark.parametrize("spectral", ["phate", "diffusion-map"])
def test_kmeans_separates_the_disc_from_the_background(fitted, scenes, spectral):
    segmenter = _with(fitted, k=2, spectral=spectral)
    for image, truth in scenes[:3]:
        labels = segmenter.predict(image)
        confusion = confusion_matrix(labels, truth)
        assert pixel_accuracy(confusion, match(confusion, "hungarian")) > 0.9


def test_same_seed_same_labels_and_any_image_size(fitted, scenes):
    again = methods.create("cuts", epochs=2, **QUICK).fit([s[0] for s in scenes])
    image = scenes[0][0]
    assert np.array_equal(fitted.predict(image), again.predict(image))
    wide = np.concatenate([image, image[:, :20]], axis=1)
    assert fitted.predict(wide).shape == (48, 68)
    gray = image.mean(axis=2).astype(np.uint8)
    assert fitted.predict(gray).shape == gray.shape


def _with(segmenter: methods.Segmenter, **params: object) -> methods.Segmenter:
    out = methods.create("cuts", **(segmenter.get_params() | params))
    out.__dict__.update({k: v for k, v in vars(segmenter).items() if k.endswith("_")})
    return out


def test_the_hierarchy_only_merges_from_one_level_to_the_next(fitted, scenes):
    diffusion = _with(fitted, cluster="diffusion", max_clusters=40)
    assert diffusion.multigranular and not fitted.multigranular
    found = diffusion.hierarchy(scenes[1][0])
    counts = [int(level.max()) + 1 for level in found.levels]
    assert len(counts) >= 3 and counts[0] >= 2 and counts == sorted(set(counts))
    for coarse, fine in zip(found.levels[:-1], found.levels[1:], strict=True):
        pairs = np.unique(np.stack([fine.ravel(), coarse.ravel()]), axis=1)
        assert len(np.unique(pairs[0])) == pairs.shape[1]  # a fine segment in one coarse one
    # predict returns the level that lasted longest (the coarsest among ties)
    longest = max(found.persistence)
    assert found.chosen == found.persistence.index(longest)
    assert np.array_equal(diffusion.predict(scenes[1][0]), found.levels[found.chosen])
    assert np.array_equal(_with(diffusion, level=1).predict(scenes[1][0]), found.levels[1])
    assert np.array_equal(_with(diffusion, level=999).predict(scenes[1][0]), found.levels[-1])
    assert diffusion.predict_levels(scenes[1][0])[0].shape == (48, 48)
    with pytest.raises(ParameterError, match="not a hierarchy"):
        methods.create("kmeans-color").hierarchy(scenes[1][0])


@pytest.mark.parametrize("rule", ["paper", "mass"])
def test_persistent_segments_cover_the_image(fitted, scenes, rule):
    from unseg.cluster.diffusion import condense

    model = _with(fitted, cluster="persistent", persistence=rule)
    labels = model.predict(scenes[2][0])
    assert labels.shape == (48, 48) and labels.min() == 0
    assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1))
    marks = model._landmarks(scenes[2][0])
    tree = condense(marks.centres, weights=marks.weights)
    rule_labels = tree.persistent(32) if rule == "paper" else tree.excess_of_mass(32)
    assert np.array_equal(labels.ravel(), rule_labels[marks.assignment])


def test_a_killed_fit_resumes_to_the_uninterrupted_model(scenes, tmp_path, killed_after):
    images = [s[0] for s in scenes]
    whole = methods.create("cuts", epochs=3, **QUICK).fit(images)
    ckpt = tmp_path / "cuts.ckpt"
    with killed_after(2):  # killed right after its second epoch
        methods.create("cuts", epochs=3, checkpoint=str(ckpt), **QUICK).fit(images)
    resumed = methods.create("cuts", epochs=3, checkpoint=str(ckpt), **QUICK).fit(images)
    for key, value in whole.encoder_.items():
        assert np.array_equal(value.numpy(), resumed.encoder_[key].numpy()), key


def test_defaults_follow_the_papers_public_setup():
    from unseg.methods.cuts import CONTRASTIVE_LOSSES, POSITIVE_RULES
    from unseg.models import cuts as model

    params = methods.create("cuts").get_params()
    assert params["patch_size"] == model.RECEPTIVE_FIELD == 17
    expected = {"radius": 5, "ssim_threshold": 0.5, "positives": "random",
                "contrastive": "paper", "temperature": 0.5, "contrastive_weight": 0.01,
                "crop_size": None, "anchors_per_crop": 16, "epochs": 200, "batch_size": 16,
                "lr": 1e-3, "weight_decay": 1e-4, "validation_fraction": 0.3,
                "embedding_dim": 128, "spectral": "phate", "diffusion_time": 2, "k": 10}
    assert {k: params[k] for k in expected} == expected
    assert POSITIVE_RULES == model.POSITIVE_RULES
    assert CONTRASTIVE_LOSSES == model.CONTRASTIVE_LOSSES


def test_whole_images_of_several_sizes_train_together():
    images = [two_colours(i, size)[0] for i, size in enumerate((40, 40, 52, 30, 20))]
    segmenter = methods.create("cuts", epochs=2, embedding_dim=8, batch_size=4,
                               n_landmarks=100, k=2, validation_fraction=0.2,
                               patience=None).fit(images)
    history = segmenter.history_
    assert len(history["train_loss"]) == 2 and len(history["val_loss"]) == 2
    assert np.isfinite(history["train_loss"]).all() and np.isfinite(history["val_loss"]).all()
    assert segmenter.predict(images[4]).shape == (20, 20)  # smaller than the patches


@pytest.mark.parametrize("positives", ["random", "all", "best"])
@pytest.mark.parametrize("contrastive", ["paper", "info-nce"])
def test_every_positive_rule_and_loss_trains(scenes, positives, contrastive):
    segmenter = methods.create("cuts", epochs=1, positives=positives, contrastive=contrastive,
                               **(QUICK | {"embedding_dim": 4}))
    segmenter.fit([s[0] for s in scenes[:3]])
    assert np.isfinite(segmenter.history_["train_loss"]).all()


def test_bad_training_parameters_say_how_to_fix_them(scenes):
    with pytest.raises(ParameterError, match="odd"):
        methods.create("cuts", patch_size=6).fit([scenes[0][0]])
    with pytest.raises(ParameterError, match="--crop-size"):
        methods.create("cuts", crop_size=20).fit([scenes[0][0]])


def test_fit_then_segment_levels_from_the_command_line(scenes, tmp_path, capsys):
    data = tmp_path / "data"
    for i, (image, truth) in enumerate(scenes[:4]):
        write_image(data / "img" / f"s{i}.png", image)
        write_image(data / "mask" / f"s{i}.png", truth.astype(np.uint8))
    model = tmp_path / "cuts.pt"
    assert main(["fit", "cuts", str(data), "--out", str(model), "--epochs", "1",
                 "--embedding-dim", "8", "--crop-size", "32", "--n-landmarks", "100"]) == 0
    assert model.exists() and not Path(str(model) + ".ckpt").exists()
    out = tmp_path / "levels"
    assert main(["segment", "cuts", str(data), "--model", str(model), "--out", str(out),
                 "--cluster", "diffusion", "--max-clusters", "12"]) == 0
    summary = json.loads((out / "s0_levels.json").read_text())
    n = len(summary["segments"])
    assert n >= 2 and len(summary["persistence"]) == n and 0 <= summary["chosen"] < n
    for number in range(n):
        level = read_label_map(out / f"s0_level{number}.png")
        assert level.shape == (48, 48) and level.max() + 1 == summary["segments"][number]
    chosen = read_label_map(out / f"s0_level{summary['chosen']}.png")
    assert np.array_equal(read_label_map(out / "s0.png"), chosen)
    # training parameters are fixed by the model; prediction ones may change
    capsys.readouterr()
    assert main(["segment", "cuts", str(data), "--model", str(model), "--out", str(out),
                 "--epochs", "3"]) != 0
    assert "drop --epochs" in capsys.readouterr().err
    assert main(["segment", "cuts", str(data), "--model", str(model), "--out",
                 str(tmp_path / "km"), "--k", "2"]) == 0
    assert main(["evaluate", "--pred", str(tmp_path / "km"), "--gt", str(data), "--match",
                 "foreground", "--scope", "image"]) == 0
    report = capsys.readouterr().out
    assert "Ground-truth guided" in report and "| dice |" in report


def test_real_fundus_images_past_512_pixels(shared_data):
    paths = sorted((shared_data / "drive-train" / "img").glob("*.png"))[:2]
    images = [read_image(p) for p in paths]
    assert images[0].shape[0] * images[0].shape[1] > 512 * 512
    segmenter = methods.create("cuts", epochs=1, embedding_dim=16, n_landmarks=300, k=4)
    segmenter.fit(images)
    for cluster in ("kmeans", "diffusion", "persistent"):
        labels = _with(segmenter, cluster=cluster).predict(images[1])
        assert labels.shape == images[1].shape[:2]
        assert 2 <= labels.max() + 1 <= (4 if cluster == "kmeans" else 32)
