"""Linear probing of concept memberships, the F-SEG paper's evaluation with labels.

On labelled training images, each pixel's memberships in the concepts of a factorization
method (upsampled bilinearly from the feature grid) become features:

- **association**: a concept is associated with the class holding at least ``threshold`` of
  the training pixels it labels (thresholded pixel overlap); its pixels are predicted as that
  class, and pixels of unassociated concepts count as errors;
- **linear**: a logistic-regression classifier on the memberships predicts each pixel's class.

Both predict held-out images, scored with ``identity`` matching (predictions are class ids).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from unseg.data import Sample, load_sample
from unseg.errors import InputError, UnsegError

if TYPE_CHECKING:
    from unseg.eval.evaluate import EvaluationResult
    from unseg.methods.factorization import FactorizationSegmenter


@dataclass
class ProbeResult:
    """The association table and the two probes' scores on the test images."""

    association: dict[int, int | None]
    overlap: np.ndarray  # (n_labels, C) fraction of each concept's training pixels per class
    linear: EvaluationResult
    associated: EvaluationResult
    failures: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "association": {str(k): v for k, v in self.association.items()},
            "linear": self.linear.to_dict(),
            "association_probe": self.associated.to_dict(),
            "failures": self.failures,
        }

    def to_markdown(self) -> str:
        assoc = ", ".join(f"{k}->{v}" for k, v in self.association.items() if v is not None)
        return (
            "# Linear probe (classifier on concept memberships)\n\n"
            + self.linear.to_markdown()
            + "\n\n# Association probe (concept -> class by thresholded pixel overlap)\n\n"
            + f"Associated concepts: {assoc or 'none'}\n\n"
            + self.associated.to_markdown()
        )


def _readable(samples: list[Sample], failures: list[tuple[str, str]]
              ) -> Iterator[tuple[Sample, np.ndarray, np.ndarray]]:
    """Each sample with its image and mask; unreadable ones go to ``failures``."""
    for sample in samples:
        try:
            image, mask = load_sample(sample)
        except InputError as error:
            failures.append((sample.id, str(error)))
            continue
        assert mask is not None  # every sample was checked to have one
        yield sample, image, mask


def probe(
    segmenter: FactorizationSegmenter,
    train: list[Sample],
    test: list[Sample],
    *,
    threshold: float = 0.5,
    pixels_per_image: int = 2000,
    random_state: int | None = 0,
) -> ProbeResult:
    """Fit the two probes on ``train`` (masks needed) and score them on ``test``.

    ``segmenter`` must be fitted (for F-SEG: its concept bank ready).
    """
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from unseg.eval import evaluate
    from unseg.factorize import sample_upsampled, upsample_argmax

    for sample in train + test:
        if sample.mask is None:
            raise InputError(sample.image, "no mask for this image",
                             "probing needs folders holding img/ and mask/")
    rng = np.random.default_rng(random_state)
    features, targets = [], []
    failures: list[tuple[str, str]] = []
    for _, image, mask in _readable(train, failures):
        valid = np.flatnonzero(mask.ravel() != 255)
        picked = rng.choice(valid, size=min(pixels_per_image, valid.size), replace=False)
        ys, xs = np.unravel_index(picked, mask.shape)
        scores, stride = segmenter.memberships([image])
        features.append(sample_upsampled(scores[0], stride, ys, xs))
        targets.append(mask[ys, xs])
    if not features:
        raise UnsegError("no training image could be read: " + "; ".join(m for _, m in failures))
    x, y = np.concatenate(features), np.concatenate(targets)
    n_classes = int(y.max()) + 1

    owner = x.argmax(axis=1)
    counts = np.zeros((x.shape[1], n_classes))
    np.add.at(counts, (owner, y), 1)
    overlap = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    association = {
        c: (int(overlap[c].argmax()) if overlap[c].max() >= threshold else None)
        for c in range(x.shape[1]) if counts[c].sum() > 0
    }
    lookup = torch.tensor([association.get(c) if association.get(c) is not None else 255
                           for c in range(x.shape[1])])

    scaler = StandardScaler().fit(x)
    classifier = LogisticRegression(max_iter=2000).fit(scaler.transform(x), y)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    coef = classifier.coef_ / scale  # logits = coef @ m + bias: linear in the memberships
    bias = classifier.intercept_ - coef @ scaler.mean_
    if coef.shape[0] == 1:  # two classes: sklearn gives one logit for class 1
        coef, bias = np.vstack([np.zeros_like(coef), coef]), np.array([0.0, bias[0]])
    classes = torch.from_numpy(classifier.classes_)

    predictions: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for sample, image, mask in _readable(test, failures):
        scores, stride = segmenter.memberships([image])
        grid = scores[0].float()
        size = (grid.shape[1] * stride, grid.shape[2] * stride)
        h, w = image.shape[:2]
        logits = torch.einsum("cl,lhw->chw", torch.from_numpy(coef).float().to(grid.device), grid)
        logits += torch.from_numpy(bias).float().to(grid.device)[:, None, None]
        linear = classes[upsample_argmax(logits, size)[0].cpu()][:h, :w].numpy()
        owner_map = upsample_argmax(grid, size)[0].cpu()[:h, :w]
        associated = lookup[owner_map].numpy()
        predictions[sample.id] = (linear, associated, mask)

    def scored(which: int) -> EvaluationResult:
        def load(name: str) -> tuple[np.ndarray, np.ndarray]:
            return predictions[name][which], predictions[name][2]

        return evaluate(sorted(predictions), load, match="identity", scope="dataset")

    return ProbeResult(association, overlap, scored(0), scored(1), failures)
