"""The one seeded training loop shared by the trainable methods.

Every trainable method (CUTS, CIRS, AIR, W-Net, ACSeg's concept generator, attention-based
clustering) builds its torch modules inside :func:`seeded`, then hands them to :func:`train`
with a step function and a batch sampler. The loop owns the epochs, the progress bar, the
label-free held-out loss with early stopping and best-state restore, and the checkpoint that
lets a killed run resume with the same result.
"""

from unseg.train.loop import History, holdout_split, resolve_device, seeded, train

__all__ = ["History", "holdout_split", "resolve_device", "seeded", "train"]
