"""Linear probing of F-SEG concepts with labelled images: the paper's probe and two others.

- **concept** (the F-SEG paper's section 3.5.1): each training image is factorized alone into
  concepts; a concept holding at least ``threshold`` of its pixels in one class is associated
  with that class, and its feature vector H_m becomes one training example of that class; a
  logistic-regression classifier on these vectors then labels every concept of a test image,
  and each pixel takes the class of its concept, ``argmax_c w_c . H_beta(ij)``;
- **association**: each pixel's memberships in the bank's concepts (upsampled bilinearly from
  the feature grid); a bank concept is associated with the class holding at least
  ``threshold`` of the training pixels it labels (pooled over the images); its pixels are
  predicted as that class, and pixels of unassociated concepts count as errors;
- **linear**: a logistic-regression classifier on those per-pixel memberships.

All three predict held-out images, scored with ``identity`` matching (predictions are class
ids).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from unseg.data import Sample, load_sample
from unseg.errors import InputError, UnsegError

if TYPE_CHECKING:
    from unseg.eval.evaluate import EvaluationResult
    from unseg.methods.factorization import FSegSegmenter


@dataclass
class ProbeResult:
    """The association table and the three probes' scores on the test images."""

    association: dict[int, int | None]
    overlap: np.ndarray  # (n_labels, C) fraction of each concept's training pixels per class
    linear: EvaluationResult
    associated: EvaluationResult
    concept: EvaluationResult
    #: Training examples of the concept probe per class: associated per-image concepts.
    concept_examples: dict[int, int]
    failures: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "association": {str(k): v for k, v in self.association.items()},
            "concept_probe": self.concept.to_dict(),
            "concept_examples": {str(k): v for k, v in self.concept_examples.items()},
            "linear": self.linear.to_dict(),
            "association_probe": self.associated.to_dict(),
            "failures": self.failures,
        }

    def to_markdown(self) -> str:
        assoc = ", ".join(f"{k}->{v}" for k, v in self.association.items() if v is not None)
        examples = ", ".join(f"class {k}: {v}" for k, v in self.concept_examples.items())
        return (
            "# Concept probe (the F-SEG paper's: classifier on per-image concept features)\n\n"
            + f"Training concepts: {examples or 'none'}\n\n"
            + self.concept.to_markdown()
            + "\n\n# Linear probe (classifier on bank concept memberships)\n\n"
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
    segmenter: FSegSegmenter,
    train: list[Sample],
    test: list[Sample],
    *,
    threshold: float = 0.5,
    pixels_per_image: int = 2000,
    random_state: int | None = 0,
) -> ProbeResult:
    """Fit the three probes on ``train`` (masks needed) and score them on ``test``.

    ``segmenter`` must be fitted (its concept bank ready).
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
    concept_x, concept_y = [], []
    for _, image, mask in _readable(train, failures):
        valid = np.flatnonzero(mask.ravel() != 255)
        picked = rng.choice(valid, size=min(pixels_per_image, valid.size), replace=False)
        ys, xs = np.unravel_index(picked, mask.shape)
        scores, stride = segmenter.memberships([image])
        features.append(sample_upsampled(scores[0], stride, ys, xs))
        targets.append(mask[ys, xs])
        concept_of, concept_features = segmenter.image_concepts(image)
        for concept, feature in enumerate(concept_features):
            classes = mask[(concept_of == concept) & (mask != 255)]
            if classes.size:
                share = np.bincount(classes) / classes.size
                if share.max() >= threshold:
                    concept_x.append(feature)
                    concept_y.append(int(share.argmax()))
    if not features:
        raise UnsegError("no training image could be read: " + "; ".join(m for _, m in failures))
    if not concept_y:
        raise UnsegError(
            f"no concept of the training images holds {threshold:.0%} of its pixels in one "
            "class, so the concept probe has nothing to learn. Fix: lower --threshold.")
    x, y = np.concatenate(features), np.concatenate(targets)
    n_classes = int(y.max()) + 1
    concept_probe = _classifier(np.array(concept_x), np.array(concept_y))

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

    predictions: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
    for sample, image, mask in _readable(test, failures):
        scores, stride = segmenter.memberships([image])
        grid = scores[0].float()
        h, w = image.shape[:2]
        logits = torch.einsum("cl,lhw->chw", torch.from_numpy(coef).float().to(grid.device), grid)
        logits += torch.from_numpy(bias).float().to(grid.device)[:, None, None]
        linear = classes[upsample_argmax(logits, stride)[0].cpu()][:h, :w].numpy()
        owner_map = upsample_argmax(grid, stride)[0].cpu()[:h, :w]
        associated = lookup[owner_map].numpy()
        concept_of, concept_features = segmenter.image_concepts(image)
        by_concept = concept_probe(concept_features)[concept_of]
        predictions[sample.id] = (linear, associated, by_concept, mask)

    def scored(which: int) -> EvaluationResult:
        def load(name: str) -> tuple[np.ndarray, np.ndarray]:
            return predictions[name][which], predictions[name][3]

        return evaluate(sorted(predictions), load, match="identity", scope="dataset")

    examples = {int(c): int(n) for c, n in zip(*np.unique(concept_y, return_counts=True),
                                               strict=True)}
    return ProbeResult(association, overlap, scored(0), scored(1), scored(2), examples,
                       failures)


def _classifier(x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Logistic regression on standardized rows of ``x``: a function from rows to classes
    (the one class, when the examples have one)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if np.unique(y).size == 1:
        return lambda rows: np.full(len(rows), y[0], dtype=np.int32)
    scaler = StandardScaler().fit(x)
    fitted = LogisticRegression(max_iter=2000).fit(scaler.transform(x), y)
    return lambda rows: fitted.predict(scaler.transform(rows)).astype(np.int32)
