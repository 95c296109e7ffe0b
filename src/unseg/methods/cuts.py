"""CUTS: a pixel encoder trained by intra-image contrast and patch reconstruction, then
multigranular clustering of each image's pixel embeddings.

``fit`` trains :class:`unseg.models.cuts.CUTSEncoder` on a folder of images (whole images by
default, as the paper's public setup; random crops with ``crop_size``);
``predict`` embeds every pixel of an image and clusters the embeddings (see
:mod:`unseg.cluster.diffusion`), on at most ``n_landmarks`` weighted landmarks so that memory
does not grow with the square of the pixel count. Label ids are per image.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from unseg.errors import ParameterError
from unseg.methods import register
from unseg.methods.base import Hierarchy, Segmenter
from unseg.methods.files import expect_module_state
from unseg.methods.params import SEED, Interval, Options, Text, param
from unseg.types import Image, LabelMap

# The names only: the torch module is imported when a model trains or predicts.
POSITIVE_RULES = ("random", "all", "best")
CONTRASTIVE_LOSSES = ("paper", "info-nce")

if TYPE_CHECKING:
    import torch

CLUSTERINGS = ("kmeans", "diffusion", "persistent")


def _as_input(image: Image, channels: int) -> np.ndarray:
    """(channels, H, W) float32 in [0, 1]; grayscale repeated to 3 channels when needed."""
    from unseg.io.images import as_float32

    x = as_float32(np.asarray(image))
    if x.ndim == 2:
        x = x[..., None]
    if x.shape[2] != channels:
        if x.shape[2] == 1:
            x = np.repeat(x, channels, axis=2)
        else:  # RGB given to a grayscale model
            x = x.mean(axis=2, keepdims=True)
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def _crop(x: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    """A height x width crop of (C, H, W) at (top, left), mirrored where the image is smaller.
    """
    _, h, w = x.shape
    if h < height or w < width:
        x = np.pad(x, [(0, 0), (0, max(0, height - h)), (0, max(0, width - w))],
                   mode="symmetric")
    return x[:, top : top + height, left : left + width]


@register("cuts")
class CUTSSegmenter(Segmenter):
    """CUTS: a contrastive + reconstruction pixel encoder, then multigranular clustering.

    Each image's pixel embeddings are clustered by k-means on PHATE's diffusion map, by
    diffusion condensation (every level) or into persistent structures; ids are per image.
    """

    requires_fit = True
    learned = ("channels_", "encoder_", "history_")
    test_params = {
        "embedding_dim": 8, "epochs": 1, "crop_size": 28, "anchors_per_crop": 4,
        "batch_size": 2, "n_landmarks": 50, "k": 3,
    }
    cluster: str = param(
        default="kmeans", check=Options(CLUSTERINGS), predict=True,
        doc='How each image\'s embeddings become segments: "kmeans" k-means on a spectral '
            'embedding (--spectral; k segments); "diffusion" a level of diffusion condensation '
            "(the level that lasts longest, or --level), with every level available; "
            '"persistent" one map of the segments that persist longest through condensation.')
    k: int = param(default=10, check=Interval(int, low=2), predict=True,
                   doc='Segments of the "kmeans" clustering.')
    spectral: str = param(
        default="phate", check=Options(("phate", "diffusion-map")), predict=True,
        doc='The embedding "kmeans" clusters: "phate" the diffusion map of PHATE\'s kernel '
            "(each landmark's bandwidth the distance to its 5th nearest landmark, alpha decay "
            '40) at diffusion time --diffusion-time; "diffusion-map" a Gaussian kernel of one '
            "bandwidth at time 1, rows scaled to unit length.")
    diffusion_time: int | None = param(
        default=2, check=Interval(int, low=1, allow_none=True), predict=True,
        doc='Diffusion time t of "phate" (2 as the public CUTS code); None picks it as PHATE '
            "does by default, at the knee of the von Neumann entropy of the diffusion "
            "operator's powers.")
    level: int | None = param(
        default=None, check=Interval(int, low=0, allow_none=True), predict=True,
        doc='"diffusion": the level to return, 0 being the coarsest (2 or more segments); a '
            "level beyond the finest gives the finest. None picks the level where the number "
            "of segments plateaus longest.")
    max_clusters: int = param(
        default=32, check=Interval(int, low=2), predict=True,
        doc="Condensation levels with more segments than this are not returned, and do not "
            'take part in "persistent".')
    persistence: str = param(
        default="paper", check=Options(("paper", "mass")), predict=True,
        doc='How "persistent" ranks segments: "paper" by the condensation steps a segment '
            "stays intact, the more persistent painted over the less (the CUTS paper); "
            '"mass" by pixels x steps lived, tiny merges ignored, the excess-of-mass cut of '
            "HDBSCAN over the merge tree.")
    n_landmarks: int = param(
        default=1000, check=Interval(int, low=2), predict=True,
        doc="Pixels are summarised by at most this many weighted k-means landmarks before "
            "clustering; memory and time of clustering grow with it, not with the image.")
    embedding_dim: int = param(default=128, check=Interval(int, low=1),
                               doc="Size of the pixel embedding (channels of the last "
                                   "convolution).")
    patch_size: int = param(
        default=17, check=Interval(int, low=1),
        doc="Side of the patches compared by SSIM and rebuilt from the embedding (odd); 17 is "
            "the encoder's receptive field.")
    radius: int = param(
        default=5, check=Interval(int, low=1),
        doc="Positives are mined among the pixels at most this far from the anchor (a square).")
    ssim_threshold: float = param(
        default=0.5, check=Interval(float, low=-1, high=1),
        doc="A neighbour is a positive candidate when the SSIM of its patch with the anchor's "
            "is at least this; anchors without a candidate stay out of the contrastive loss.")
    positives: str = param(
        default="random", check=Options(POSITIVE_RULES),
        doc='Which candidates are an anchor\'s positives: "random" one drawn among them, "all" '
            'of them, "best" the one of highest SSIM.')
    contrastive: str = param(
        default="paper", check=Options(CONTRASTIVE_LOSSES),
        doc='"paper": -log(sum over positives / sum over negatives) of exp(cosine / '
            "temperature), the negatives being the other anchors' positives; \"info-nce\": the "
            "anchor's own positives in the denominator too.")
    temperature: float = param(default=0.5, check=Interval(float, low=0, low_open=True),
                               doc="Temperature of the contrastive loss.")
    contrastive_weight: float = param(
        default=0.01, check=Interval(float, low=0, high=1),
        doc="lambda: loss = lambda * contrastive + (1 - lambda) * reconstruction.")
    crop_size: int | None = param(
        default=None, check=Interval(int, low=8, allow_none=True),
        doc="None trains on whole images; a size trains on one random crop_size x crop_size "
            "crop of each image per epoch (much faster on a CPU).")
    anchors_per_crop: int = param(default=16, check=Interval(int, low=2),
                                  doc="Anchor pixels drawn in each training image (or crop).")
    epochs: int = param(
        default=200, check=Interval(int, low=1),
        doc="Most training epochs; an epoch takes every training image (or a crop of it) once.")
    batch_size: int = param(default=16, check=Interval(int, low=1),
                            doc="Images (or crops) per mini-batch.")
    lr: float = param(default=1e-3, check=Interval(float, low=0, low_open=True),
                      doc="AdamW learning rate.")
    weight_decay: float = param(default=1e-4, check=Interval(float, low=0),
                                doc="AdamW weight decay.")
    validation_fraction: float = param(
        default=0.3, check=Interval(float, low=0, high=0.9),
        doc="Share of the images held out for the label-free validation loss (fixed crops and "
            "anchors); the weights of the epoch with the lowest held-out loss are kept.")
    patience: int | None = param(
        default=10, check=Interval(int, low=1, allow_none=True),
        doc="Stop when the held-out loss has not improved for this many epochs.")
    checkpoint: str | None = param(
        default=None, check=Text(allow_none=True),
        doc="File the training state is saved to after every epoch and resumed from when it "
            "exists (`unseg fit` uses OUT.ckpt).")
    device: str = param(default="cpu", check=Text(), predict=True,
                        doc='Where training and embedding run: "cpu", "cuda", "auto".')
    random_state: int | None = param(
        default=0, check=SEED, doc="Seed of the weights, crops, anchors, landmarks and k-means.")

    def _n_labels(self) -> int:
        return self.k if self.cluster == "kmeans" else self.max_clusters

    def _check_state(self) -> None:
        from unseg.models.cuts import CUTSEncoder

        if self.channels_ not in (1, 3):
            raise ValueError(f"channels_ is {self.channels_!r}, not 1 or 3")
        expect_module_state("encoder_", CUTSEncoder(self.channels_, self.embedding_dim),
                            self.encoder_)
        if not isinstance(self.history_, dict):
            raise ValueError(f"history_ is a {type(self.history_).__name__}, not a dict")

    # -- training ---------------------------------------------------------------------------
    def _margin(self) -> int:
        from unseg.models.cuts import RECEPTIVE_RADIUS

        return max(RECEPTIVE_RADIUS, self.patch_size // 2) + self.radius

    def _loss_kwargs(self) -> dict[str, Any]:
        return {"n_anchors": self.anchors_per_crop, "patch_size": self.patch_size,
                "radius": self.radius, "ssim_threshold": self.ssim_threshold,
                "temperature": self.temperature, "contrastive_weight": self.contrastive_weight,
                "positives": self.positives, "contrastive": self.contrastive}

    def _fit(self, images: Iterable[Image]) -> None:
        import torch

        from unseg.models.cuts import CUTSEncoder, cuts_loss
        from unseg.train import resolve_device, run_key, seeded, train_on_items

        if self.patch_size % 2 == 0:
            raise ParameterError(
                f"cuts: patch_size must be odd, got {self.patch_size}. "
                f"Fix: pass --patch-size {self.patch_size + 1}."
            )
        smallest = 2 * self._margin() + 1
        if self.crop_size is not None and self.crop_size < smallest:
            raise ParameterError(
                f"cuts: crop_size must be at least {smallest} (twice the receptive radius "
                f"plus radius, plus one), got {self.crop_size}. Fix: pass --crop-size "
                f"{smallest + 16}, or leave it out to train on whole images."
            )
        raw = list(images)
        if len(raw) < 1:
            raise ParameterError("cuts: training needs at least 1 image. Fix: fit on a folder.")
        self.channels_ = 1 if all(np.asarray(im).ndim == 2 for im in raw) else 3
        data = [_as_input(im, self.channels_) for im in raw]
        if self.crop_size is None:  # whole images, mirrored up to the smallest usable size
            data = [_crop(d, 0, 0, max(d.shape[1], smallest), max(d.shape[2], smallest))
                    for d in data]
        skipped = ("checkpoint", "device", *self.predict_param_names())
        key = run_key(self.name, {k: v for k, v in self.get_params().items()
                                  if k not in skipped}, data)

        def corner(rng: np.random.Generator, i: int) -> tuple[int, int, int]:
            if self.crop_size is None:
                return (i, 0, 0)
            _, h, w = data[i].shape
            return (i, int(rng.integers(0, max(h - self.crop_size, 0) + 1)),
                    int(rng.integers(0, max(w - self.crop_size, 0) + 1)))

        def window(item: tuple[int, int, int]) -> np.ndarray:
            i, top, left = item
            if self.crop_size is None:
                return data[i]
            return _crop(data[i], top, left, self.crop_size, self.crop_size)

        def batch_loss(batch: list[tuple[int, int, int]],
                       generator: torch.Generator | None = None) -> torch.Tensor:
            """The loss of a batch, images of one shape stacked together (whole images of
            several sizes form one stack per size), weighted by their share of the batch."""
            groups: dict[tuple[int, ...], list[np.ndarray]] = {}
            for item in batch:
                x = window(item)
                groups.setdefault(x.shape, []).append(x)
            return sum((cuts_loss(encoder, head, torch.from_numpy(np.stack(g)).to(device),
                                  generator=generator, **self._loss_kwargs()) * len(g)
                        for g in groups.values()), torch.zeros((), device=device)) / len(batch)

        device = resolve_device(self.device)
        with seeded(self.random_state):
            encoder = CUTSEncoder(self.channels_, self.embedding_dim).to(device)
            head = torch.nn.Linear(self.embedding_dim,
                                   self.channels_ * self.patch_size**2).to(device)
            modules: dict[str, torch.nn.Module] = {"encoder": encoder, "head": head}
            optimizer = torch.optim.AdamW([*encoder.parameters(), *head.parameters()],
                                          lr=self.lr, weight_decay=self.weight_decay)

            def step(batch: list[tuple[int, int, int]], step_index: int) -> float:
                loss = batch_loss(batch)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                return loss.item()

            history = train_on_items(
                modules, {"adamw": optimizer}, step, batch_loss, len(data), draw=corner,
                batch_size=self.batch_size, validation_fraction=self.validation_fraction,
                epochs=self.epochs, patience=self.patience, checkpoint=self.checkpoint, key=key,
                random_state=self.random_state, desc="training cuts")
        self.encoder_ = {k: v.detach().cpu() for k, v in encoder.state_dict().items()}
        self.history_ = dataclasses.asdict(history)

    # -- prediction ---------------------------------------------------------------------------
    def embed(self, image: Image) -> np.ndarray:
        """The (H, W, embedding_dim) float32 pixel embeddings of one image."""
        import torch

        from unseg.models.cuts import CUTSEncoder
        from unseg.train import resolve_device

        image = self._checked(image)
        self._check_ready()
        device = resolve_device(self.device)
        cache = getattr(self, "_encoder_cache", None)
        if cache is None or next(cache.parameters()).device != device:
            cache = CUTSEncoder(self.channels_, self.embedding_dim)
            cache.load_state_dict(self.encoder_)
            self._encoder_cache = cache.to(device).eval()
        x = torch.from_numpy(_as_input(image, self.channels_))[None].to(device)
        with torch.no_grad():
            z = cache(x)[0]
        return z.permute(1, 2, 0).cpu().numpy()

    def _landmarks(self, image: Image) -> Any:
        from unseg.cluster.diffusion import landmarks

        z = self.embed(image).reshape(-1, self.embedding_dim)
        z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        return landmarks(z, self.n_landmarks, random_state=self.random_state)

    @property
    def multigranular(self) -> bool:
        return self.cluster == "diffusion"

    def _hierarchy(self, image: Image) -> Hierarchy:
        """Every diffusion condensation level with 2 to ``max_clusters`` segments, coarse to
        fine, how many steps each lasted, and the level ``predict`` returns."""
        from unseg.cluster.diffusion import condense

        marks = self._landmarks(image)
        result = condense(marks.centres, weights=marks.weights)
        counts = result.n_clusters
        kept = [lv for lv in range(len(counts) - 1, -1, -1)
                if 2 <= counts[lv] <= self.max_clusters]
        if not kept:  # no level between 2 and max_clusters segments: the single cluster
            kept = [len(counts) - 1]
        shape = np.asarray(image).shape[:2]
        levels = [result.labels[lv][marks.assignment].reshape(shape).astype(np.int32)
                  for lv in kept]
        durations = [int(result.durations[lv]) for lv in kept]
        if self.level is not None:
            chosen = min(self.level, len(kept) - 1)
        else:
            chosen = int(np.lexsort((np.arange(len(kept)), -np.asarray(durations)))[0])
        return Hierarchy(levels, durations, chosen)

    def _predict(self, image: Image) -> LabelMap:
        from unseg.cluster.diffusion import condense, diffusion_kmeans, phate_kmeans

        if self.cluster == "diffusion":
            found = self._hierarchy(image)
            return found.levels[found.chosen]
        marks = self._landmarks(image)
        if self.cluster == "kmeans" and self.spectral == "phate":
            labels = phate_kmeans(marks.centres, self.k, weights=marks.weights,
                                  t=self.diffusion_time, random_state=self.random_state)
        elif self.cluster == "kmeans":
            labels = diffusion_kmeans(marks.centres, self.k, weights=marks.weights,
                                      random_state=self.random_state)
        else:
            tree = condense(marks.centres, weights=marks.weights)
            labels = (tree.persistent(self.max_clusters) if self.persistence == "paper"
                      else tree.excess_of_mass(self.max_clusters))
        return labels[marks.assignment].reshape(np.asarray(image).shape[:2]).astype(np.int32)
