"""The one seeded training loop shared by the trainable methods.

Every trainable method (CUTS, CIRS, AIR, ACSeg's concept generator, attention-based clustering)
builds its torch modules inside :func:`seeded`, then hands them to :func:`train` with a step
function and a batch sampler; :func:`train_on_items` adds the held-out split and the batching of
the methods that train on a list of images, :func:`run_key` the identity of a run. The loop owns
the epochs, the progress bar, the label-free held-out loss with early stopping and best-state
restore, and the checkpoint that lets a killed run resume with the same result.
"""

from unseg.train.loop import (
    History,
    holdout_split,
    resolve_device,
    run_key,
    seeded,
    train,
    train_on_items,
)

__all__ = [
    "History", "holdout_split", "resolve_device", "run_key", "seeded", "train", "train_on_items",
]
