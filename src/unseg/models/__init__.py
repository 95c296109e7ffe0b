"""Torch modules of the trainable methods (channel-first tensors). Import from the submodules;
the training loop itself is :mod:`unseg.train`."""
