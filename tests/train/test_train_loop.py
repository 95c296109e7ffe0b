"""The shared training loop: seeding, early stopping, best state, checkpoints and resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from unseg.errors import InputError, ParameterError
from unseg.train import holdout_split, resolve_device, seeded, train

X = torch.linspace(-1, 1, 64).unsqueeze(1)
Y = 3 * X - 0.5


def _run(epochs=6, checkpoint=None, fail_at=None, validate=None, patience=None, key="k", seed=0):
    with seeded(seed):
        model = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
        optimizer = torch.optim.Adam(model.parameters(), lr=0.05)

        def step(batch, index):
            if fail_at is not None and index == fail_at:
                raise KeyboardInterrupt
            noise = 0.01 * torch.randn(len(batch))  # torch's generator, restored on resume
            loss = ((model(X[batch]).squeeze(1) + noise - Y[batch].squeeze(1)) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss.item()

        def batches(rng):
            order = rng.permutation(len(X))
            return [order[i : i + 16] for i in range(0, len(X), 16)]

        history = train(
            {"model": model}, {"adam": optimizer}, step, batches, epochs=epochs,
            validate=None if validate is None else (lambda: validate(model)),
            patience=patience, checkpoint=checkpoint, key=key, random_state=seed,
        )
    return model, history


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_same_seed_same_weights_and_the_loss_falls():
    a, history = _run()
    b, _ = _run()
    c, _ = _run(seed=1)
    assert torch.equal(_weights(a), _weights(b))
    assert not torch.equal(_weights(a), _weights(c))
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert len(history.epoch_seconds) == 6


def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    ckpt = tmp_path / "run.ckpt"
    whole, _ = _run()
    with pytest.raises(KeyboardInterrupt):
        _run(checkpoint=ckpt, fail_at=4 * 3 + 2)  # during the fourth epoch (4 steps each)
    assert ckpt.exists()
    resumed, history = _run(checkpoint=ckpt)
    assert history.resumed_from == 3
    assert len(history.train_loss) == 6
    assert torch.equal(_weights(whole), _weights(resumed))


def test_checkpoint_of_another_run_is_refused(tmp_path):
    ckpt = tmp_path / "run.ckpt"
    _run(epochs=1, checkpoint=ckpt)
    with pytest.raises(InputError, match="other parameters"):
        _run(checkpoint=ckpt, key="other")
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="delete it"):
        _run(checkpoint=ckpt)


def test_a_crafted_checkpoint_cannot_run_code(tmp_path):
    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    ckpt = tmp_path / "run.ckpt"
    torch.save({"format": "unseg-checkpoint", "key": "k", "history": Payload()}, ckpt)
    with pytest.raises(InputError, match="not a readable training checkpoint"):
        _run(checkpoint=ckpt)
    assert not marker.exists()


def test_early_stop_restores_the_best_epoch():
    # A held-out loss that is best at the second epoch, then rises.
    values = iter([5.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    snapshots = []

    def validate(model):
        snapshots.append(_weights(model).clone())
        return next(values)

    model, history = _run(epochs=7, validate=validate, patience=2)
    assert history.stopped_early
    assert history.best_epoch == 1
    assert len(history.val_loss) == 4
    assert torch.equal(_weights(model), snapshots[1])


def test_holdout_split_is_seeded_and_disjoint():
    train_idx, val_idx = holdout_split(10, 0.2, 0)
    assert len(val_idx) == 2 and len(train_idx) == 8
    assert set(train_idx).isdisjoint(val_idx)
    assert np.array_equal(holdout_split(10, 0.2, 0)[1], val_idx)
    assert len(holdout_split(3, 0.01, 0)[1]) == 1
    assert len(holdout_split(1, 0.5, 0)[1]) == 0
    assert len(holdout_split(5, 0.0, 0)[1]) == 0


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in {"cpu", "cuda"}
    with pytest.raises(ParameterError, match="unknown device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="--device cpu"):
            resolve_device("cuda")
