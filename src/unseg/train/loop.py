"""Epochs, progress, early stopping on a held-out loss, checkpoints and resume."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from unseg.errors import InputError, ParameterError

CHECKPOINT_FORMAT = "unseg-checkpoint"


@dataclass
class History:
    """What :func:`train` did, epoch by epoch."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False
    #: The number of epochs a checkpoint had already completed when this run started.
    resumed_from: int = 0


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; other names are checked to exist."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ParameterError(
            f"unknown device {device!r}. Fix: pass cpu, cuda, cuda:N or auto."
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(
            f"device {device!r} asked for, but torch sees no CUDA GPU here. "
            "Fix: pass --device cpu (or auto)."
        )
    return resolved


@contextmanager
def seeded(random_state: int | None) -> Iterator[None]:
    """Run the block with torch's CPU generator seeded, restoring the caller's state after.

    Build the modules and call :func:`train` inside it: the same seed gives the same weights.
    """
    with torch.random.fork_rng(devices=[]):
        if random_state is not None:
            torch.manual_seed(random_state)
        yield


def holdout_split(
    n: int, fraction: float, random_state: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and held-out items.

    ``round(n * fraction)`` are held out, at least one when ``fraction > 0`` and ``n >= 2``
    (and never all); none when ``fraction == 0``.
    """
    order = np.random.default_rng(random_state).permutation(n)
    n_val = 0 if fraction <= 0 or n < 2 else min(n - 1, max(1, round(n * fraction)))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _epoch_rng(random_state: int | None, epoch: int) -> np.random.Generator:
    return np.random.default_rng(None if random_state is None else [random_state, epoch])


def _state(modules: dict[str, torch.nn.Module]) -> dict[str, dict[str, torch.Tensor]]:
    return {
        name: {k: v.detach().to("cpu", copy=True) for k, v in m.state_dict().items()}
        for name, m in modules.items()
    }


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    from unseg.io import atomic_write

    with atomic_write(path) as tmp:
        torch.save(payload, tmp)


def _load_checkpoint(path: Path, key: str) -> dict[str, Any]:
    """A checkpoint's content: tensors and plain data only (``weights_only``), so a crafted
    file cannot run code."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file, or one holding other objects
        raise InputError(
            path, f"not a readable training checkpoint ({exc})", "delete it to start afresh"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise InputError(path, "not an unseg training checkpoint", "delete it to start afresh")
    if payload["key"] != key:
        raise InputError(
            path,
            "holds a run with other parameters or data",
            "delete it to start afresh, or pass the parameters and data of that run",
        )
    return payload


def train(
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    step: Callable[[Any, int], float],
    batches: Callable[[np.random.Generator], Iterable[Any]],
    *,
    epochs: int,
    validate: Callable[[], float] | None = None,
    patience: int | None = None,
    checkpoint: str | Path | None = None,
    key: str = "",
    random_state: int | None = 0,
    desc: str = "training",
) -> History:
    """Train ``modules`` for up to ``epochs`` epochs and leave them in their best state.

    Parameters
    ----------
    modules, optimizers : dict
        Everything whose state a checkpoint must hold, by name.
    step : callable (batch, step_index) -> float
        One optimisation step (zero_grad, loss, backward, optimizer step) on one batch,
        returning the loss. ``step_index`` counts steps over the whole run (for schedules that
        alternate between optimizers).
    batches : callable (numpy Generator) -> iterable
        One epoch's batches, drawn with the generator given: it is seeded by ``random_state``
        and the epoch number, so a resumed run draws the batches an uninterrupted one would.
    epochs : int
        The most epochs to run.
    validate : callable () -> float, optional
        A label-free loss on held-out images (lower is better), computed after each epoch.
        The modules end in the state of the epoch with the lowest value; without it, in their
        last state.
    patience : int, optional
        Stop when the held-out loss has not improved for this many epochs.
    checkpoint : path, optional
        Saved atomically after every epoch. If the file exists, training resumes from it.
    key : str
        Identifies the run (parameters and data); a checkpoint with another key is refused.
    random_state : int or None
        Seeds the batch draws (with the epoch) and torch's generator during training.
    desc : str
        The progress bar's label.
    """
    from unseg._progress import Progress

    if epochs < 1:
        raise ParameterError(f"epochs must be >= 1, got {epochs}. Fix: pass --epochs 1 or more.")
    history = History()
    best_val = float("inf")
    best_state: dict[str, dict[str, torch.Tensor]] | None = None
    start_epoch, step_index = 0, 0
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.exists():
        payload = _load_checkpoint(path, key)
        for name, module in modules.items():
            module.load_state_dict(payload["modules"][name])
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(payload["optimizers"][name])
        history = History(**payload["history"])
        history.resumed_from = payload["epoch"]
        best_val, best_state = payload["best_val"], payload["best_state"]
        start_epoch, step_index = payload["epoch"], payload["step"]
        torch.set_rng_state(payload["torch_rng"])
    elif random_state is not None:
        torch.manual_seed(random_state)
    waited = 0 if not history.val_loss else len(history.val_loss) - 1 - history.best_epoch
    finished = history.stopped_early
    bar = Progress(desc, total=epochs, unit="epoch", initial=start_epoch)
    try:
        for epoch in range(start_epoch, epochs):
            if finished:
                break
            started = time.perf_counter()
            for module in modules.values():
                module.train()
            losses = []
            for batch in batches(_epoch_rng(random_state, epoch)):
                losses.append(float(step(batch, step_index)))
                step_index += 1
            history.train_loss.append(float(np.mean(losses)) if losses else float("nan"))
            postfix = {"loss": f"{history.train_loss[-1]:.4g}"}
            if validate is not None:
                for module in modules.values():
                    module.eval()
                with torch.no_grad():
                    value = float(validate())
                history.val_loss.append(value)
                postfix["held-out"] = f"{value:.4g}"
                if value < best_val:
                    best_val, best_state, waited = value, _state(modules), 0
                    history.best_epoch = epoch
                else:
                    waited += 1
                if patience is not None and waited >= patience:
                    history.stopped_early = finished = True
            else:
                history.best_epoch = epoch
            history.epoch_seconds.append(time.perf_counter() - started)
            bar.update(1, **postfix)
            if path is not None:
                _save_checkpoint(path, {
                    "format": CHECKPOINT_FORMAT, "key": key, "epoch": epoch + 1,
                    "step": step_index, "modules": _state(modules),
                    "optimizers": {n: copy.deepcopy(o.state_dict()) for n, o in optimizers.items()},
                    "best_val": best_val, "best_state": best_state,
                    "history": dataclasses.asdict(history),
                    "torch_rng": torch.get_rng_state(),
                })
    finally:
        bar.close()
    if best_state is not None:
        for name, module in modules.items():
            module.load_state_dict(best_state[name])
    for module in modules.values():
        module.eval()
    return history


Item = TypeVar("Item")


def run_key(method: str, params: dict[str, Any], data: Sequence[np.ndarray]) -> str:
    """Identifies a training run (method, training parameters, the data's shapes and sum), so
    that a checkpoint of another run is refused rather than resumed."""
    summary = (method, params, [d.shape for d in data], float(sum(d.sum() for d in data)))
    return hashlib.sha256(repr(summary).encode()).hexdigest()


def train_on_items(
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    step: Callable[[list[Item], int], float],
    loss: Callable[[list[Item], torch.Generator], torch.Tensor],
    n_items: int,
    *,
    draw: Callable[[np.random.Generator, int], Item],
    batch_size: int,
    validation_fraction: float,
    epochs: int,
    patience: int | None,
    checkpoint: str | Path | None,
    key: str,
    random_state: int | None,
    desc: str,
) -> History:
    """:func:`train` on ``n_items`` training items, some held out for the label-free loss.

    ``holdout_split`` sets ``validation_fraction`` of the items apart. Each epoch draws one
    training example per remaining item, ``draw(rng, index)`` (the index itself, or a random
    crop of it), in a shuffled order, and steps on mini-batches of ``batch_size``. The held-out
    examples are drawn once, with a generator seeded by ``random_state``, and after every
    epoch ``loss(batch, generator)`` is averaged over them (per example), ``generator`` seeded
    the same way each time, so the held-out loss is the same function from epoch to epoch.
    """
    train_idx, val_idx = holdout_split(n_items, validation_fraction, random_state)

    def chunks(items: list[Item]) -> list[list[Item]]:
        return [items[s : s + batch_size] for s in range(0, len(items), batch_size)]

    def batches(rng: np.random.Generator) -> list[list[Item]]:
        return chunks([draw(rng, int(i)) for i in train_idx[rng.permutation(len(train_idx))]])

    val_rng = np.random.default_rng(random_state)
    held_out = [draw(val_rng, int(i)) for i in val_idx]

    def validate() -> float:
        generator = torch.Generator().manual_seed(random_state or 0)
        total = sum(loss(batch, generator).item() * len(batch) for batch in chunks(held_out))
        return float(total / len(held_out))

    return train(modules, optimizers, step, batches, epochs=epochs,
                 validate=validate if held_out else None, patience=patience,
                 checkpoint=checkpoint, key=key, random_state=random_state, desc=desc)
