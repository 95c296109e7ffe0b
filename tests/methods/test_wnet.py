"""wnet: training in alternating steps, model selection, the command line."""

from __future__ import annotations

import numpy as np
import torch

from unseg import methods
from unseg.cli.main import main
from unseg.eval import evaluate
from unseg.io import write_image

QUICK = {"k": 2, "input_size": 16, "batch_size": 8}


def _two_colours(n: int, size: int = 16) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(0)
    images, masks = [], []
    for _ in range(n):
        mask = np.zeros((size, size), int)
        mask[:, rng.integers(4, size - 4):] = 1
        colours = np.array([[210, 50, 40], [40, 70, 220]])[mask]
        images.append(np.clip(colours + rng.normal(0, 6, (size, size, 3)), 0, 255)
                      .astype(np.uint8))
        masks.append(mask)
    return images, masks


def test_a_step_moves_the_encoder_on_the_cut_then_both_on_the_reconstruction():
    seg = methods.create("wnet", **QUICK)
    torch.manual_seed(0)
    modules = seg._build()
    optimizers = seg._optimizers(modules)
    assert set(optimizers) == {"ncut", "reconstruction"}
    cut_params = {id(p) for g in optimizers["ncut"].param_groups for p in g["params"]}
    assert cut_params == {id(p) for p in modules["segmenter"].parameters()}
    before = {n: [p.detach().clone() for p in m.parameters()] for n, m in modules.items()}
    loss = seg._step(modules, optimizers, torch.rand(4, 3, 16, 16), 0)
    assert loss > 0
    for name, module in modules.items():
        assert any(not torch.equal(a, p) for a, p in zip(before[name], module.parameters(),
                                                         strict=True)), name


def test_wnet_separates_two_colours():
    images, masks = _two_colours(32)
    wnet = methods.create("wnet", epochs=6, lr=3e-3, dropout=0.0, **QUICK).fit(images)
    losses = wnet.history_["train_loss"]
    assert losses[-1] < losses[0]
    pairs = list(zip(wnet.predict_batch(images), masks, strict=True))
    score = evaluate(range(len(pairs)), pairs.__getitem__, match="best-iou", scope="image")
    assert score.miou_image_mean > 0.8  # one label everywhere scores at most 0.5


def test_fit_and_segment_from_the_command_line(tmp_path):
    images, _ = _two_colours(8)
    data = tmp_path / "data"
    for i, image in enumerate(images):
        write_image(data / f"im{i}.png", image)
    model = tmp_path / "wnet.npz"
    assert main(["fit", "wnet", str(data), "--out", str(model), "--epochs", "1", "--k", "2",
                 "--input-size", "16", "--batch-size", "4", "--sigma-colour", "20"]) == 0
    fitted = methods.load_model(model)
    assert (fitted.k, fitted.sigma_colour) == (2, 20.0)
    out = tmp_path / "labels"
    assert main(["segment", "wnet", str(data), "--model", str(model), "--out", str(out)]) == 0
    assert len(list(out.glob("im?.png"))) == 8
