"""The embedded ``default`` backbone: classical colour, stain and texture features, no weights.

Every channel is a fixed image-analysis measurement computed with torch (separable Gaussian
convolutions with fixed kernels, so it runs on any device) and average-pooled to stride 8 px
("cells"). ``@8`` / ``@16`` in a channel name means a Gaussian average over the neighbouring
cells with sigma 8 / 16 px; a suffix 1, 2 or 4 is the scale (sigma, px) of a texture response.
68 channels in 7 groups, in this order:

=========  ======================================================================  =====  ======
group      channels                                                                count  weight
=========  ======================================================================  =====  ======
tissue     ``tissue``: the cell's fraction of stained (non-glass) pixels,              1     1.5
           sharpened by a smooth step around 0.5 (the "gate": 0 glass, 1 tissue)
lightness  ``lightness`` CIE L*/100 and ``darkness`` 1 - L*/100                        2     1.0
colour     ``a+ a- b+ b-``: CIE a* and b* split into positive and negative halves      4     1.0
stain      ``haem eosin dab``: Ruifrok-Johnston colour deconvolution of the            3     1.0
           optical density
hue        ``hfrac@8 od_r@8 od_g@8 od_b@8``: haematoxylin fraction H / (H + E) and     4     2.0
           optical-density chromaticity (OD of R, G, B over their sum), averaged
           over tissue pixels only (sigma 8 px), times the gate: stain hue
           independent of staining intensity; 0 on glass
nuclei     on log(H + 0.05): gradient magnitude ``grad``, dark/bright blobs           36     2.0
           ``blob``/``hole`` (-/+ Laplacian of Gaussian), bright/dark lines
           ``ridge``/``valley`` (Hessian eigenvalues), local standard deviation
           ``std``; at sigma 1, 2, 4 px; weighted by the tissue pixels, averaged
           over the tissue of sigma 8 and 16 px, times the gate:
           ``loghaem.<response><scale>@<context>``
texture    the same six responses on ``lightness`` at sigma 1, 2, 4 px, averaged      18     0.5
           over sigma 8 px: ``lightness.<response><scale>``
=========  ======================================================================  =====  ======

Texture at sigma 2 and 4 px is measured at sigma 1 on the image average-pooled by 2 and 4 (a
pyramid), which is cheap and gives scale-normalised derivatives. Derivatives of log(H) are
ratios, so the nuclear channels depend less on how strongly a slide is stained than derivatives
of H would (not exactly: the 0.05 offset and the tissue weighting leave some dependence); the
hue channels are ratios too. Averaging the nuclear responses over 8-16 px makes a cell describe
the nuclei of its neighbourhood (their density, size and shape) rather than the one nucleus it
happens to contain.

Scaling: k-means and NMF weigh channels by their magnitude, so each channel is divided by a
fixed constant, its standard deviation over synthetic calibration images
(:func:`calibration_images`: :func:`unseg.data.synthetic.he_tile` and
:func:`~unseg.data.synthetic.blobs` tiles, generated in code, no real data), and multiplied by
``GROUP_WEIGHTS[group] / sqrt(channels in the group)``, so that a group's total variance does not
grow with its channel count. The four halves of a* and b* share one constant, so that Lab
distances stay perceptual. The constants are stored in :data:`_CALIBRATION_STD`;
:func:`calibrate` recomputes them. All channels are non-negative.

The group weights favour the intensity-independent groups (nuclear texture and stain hue) over
raw colour and lightness texture: on real H&E the tissue classes are told apart by how crowded,
large and dark the nuclei are and by the purple/pink balance, while absolute colour varies from
slide to slide. See ``docs/default-backbone.md`` for the measurements behind them.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F

from unseg.backbones.base import Backbone, BackboneConfig

STRIDE = 8

# Ruifrok & Johnston (2001) stain optical-density vectors, rows H, E, DAB.
_STAINS = ((0.65, 0.70, 0.29), (0.07, 0.99, 0.11), (0.27, 0.57, 0.78))
# sRGB (D65) -> XYZ, and the D65 white point.
_RGB_TO_XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_WHITE = (0.950456, 1.0, 1.088754)
# Tissue weight: a smooth step of the optical density summed over R, G, B, from 0 at
# _GLASS_OD (glass under a bright-field microscope transmits about 90% per channel) to 1 at
# _STAINED_OD (lightly stained tissue).
_GLASS_OD = 0.3
_STAINED_OD = 0.8
# Added to H + E and to OD_sum so that the hue ratios are defined on glass.
_RATIO_EPS = 0.05
# A cell counts as tissue when more than half of it is: the cell's tissue fraction is sharpened
# by a smooth step of this half-width around 0.5 ("gate"). Tissue-only channels are multiplied by
# the gate, so glass cells sit together at zero in them.
_GATE_WIDTH = 0.3
# Nuclear texture is measured on log(H + _LOG_EPS): derivatives of the log are ratios, so the
# responses do not change when a slide is stained more or less strongly.
_LOG_EPS = 0.05
_TEXTURE_LEVELS = (0, 1, 2)  # pyramid levels: sigma 1, 2, 4 px
_RESPONSES = ("grad", "blob", "hole", "ridge", "valley", "std")
_NUCLEI_CONTEXT = (1, 2)  # cells: sigma 8 and 16 px
_TEXTURE_CONTEXT = 1  # cells


def _channel_names() -> tuple[tuple[str, str], ...]:
    scales = [2**lvl for lvl in _TEXTURE_LEVELS]
    names = [("tissue", "tissue")]
    names += [("lightness", "lightness"), ("lightness", "darkness")]
    names += [("colour", c) for c in ("a+", "a-", "b+", "b-")]
    names += [("stain", c) for c in ("haem", "eosin", "dab")]
    names += [("hue", f"{q}@{STRIDE}") for q in ("hfrac", "od_r", "od_g", "od_b")]
    names += [
        ("nuclei", f"loghaem.{r}{s}@{c * STRIDE}")
        for c in _NUCLEI_CONTEXT for s in scales for r in _RESPONSES
    ]
    names += [("texture", f"lightness.{r}{s}") for s in scales for r in _RESPONSES]
    return tuple(names)


CHANNELS_AND_GROUPS = _channel_names()
#: Channel names, in order.
CHANNEL_NAMES = tuple(n for _, n in CHANNELS_AND_GROUPS)
#: Relative weight of each group (see the module docstring).
GROUP_WEIGHTS = {
    "tissue": 1.5, "lightness": 1.0, "colour": 1.0, "stain": 1.0, "hue": 2.0, "nuclei": 2.0,
    "texture": 0.5,
}


# ---------------------------------------------------------------------------------------------
# fixed kernels and filters


@cache
def _gaussian(sigma: float, order: int, device: torch.device) -> torch.Tensor:
    """Sampled 1-D Gaussian (order 0) or its first/second derivative, radius 3 sigma."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    if order == 1:
        g = -x / sigma**2 * g
    elif order == 2:
        g = (x**2 / sigma**4 - 1 / sigma**2) * g
    return g.to(torch.float32).to(device)


def _filter(x: torch.Tensor, kernel: torch.Tensor, dim: int) -> torch.Tensor:
    """Correlate every row of ``x`` along ``dim`` (-1 or -2) with the odd-length ``kernel``.

    Borders replicate the edge pixels; the output has the input's size. Computed as a sum of
    shifted copies (one multiply-add pass per tap over the whole tensor): for these few-tap,
    one-channel-per-group filters that is more than ten times faster than ``conv2d``, which
    lays every tap out in memory (im2col) before a matrix product with one row.
    """
    radius = kernel.numel() // 2
    pad = (radius, radius, 0, 0) if dim == -1 else (0, 0, radius, radius)
    padded = F.pad(x, pad, mode="replicate")
    size = x.shape[dim]
    taps = kernel.tolist()
    out = padded.narrow(dim, 0, size) * taps[0]
    for t in range(1, len(taps)):
        out.add_(padded.narrow(dim, t, size), alpha=taps[t])
    return out


def _smooth(x: torch.Tensor, sigma: float) -> torch.Tensor:
    g = _gaussian(sigma, 0, x.device)
    return _filter(_filter(x, g, -2), g, -1)


def _texture(image: torch.Tensor) -> dict[str, torch.Tensor]:
    """Scale-normalised responses at sigma 1 (in this level's pixels) of ``(B, n, h, w)``.

    Returns
    -------
    dict
        ``grad`` gradient magnitude; ``blob`` and ``hole`` the negative and positive parts of
        the Laplacian of Gaussian (bright and dark blobs of ``image``); ``ridge`` and
        ``valley`` the negative part of the smaller and the positive part of the larger Hessian
        eigenvalue (bright and dark lines); ``std`` the Gaussian-weighted standard deviation.
        All non-negative, ``(B, n, h, w)``.
    """
    g0, g1, g2 = (_gaussian(1.0, k, image.device) for k in (0, 1, 2))
    n = image.shape[1]
    # Separable filters share their passes along H: smoothed (image, image^2), first and second
    # derivatives; each pass along W then filters every map that needs the same kernel.
    smooth = _filter(torch.cat([image, image * image], 1), g0, -2)
    first, second = _filter(image, g1, -2), _filter(image, g2, -2)
    along_w0 = _filter(torch.cat([smooth, first, second], 1), g0, -1)
    moments, dy, dyy = along_w0[:, : 2 * n], along_w0[:, 2 * n : 3 * n], along_w0[:, 3 * n :]
    along_w1 = _filter(torch.cat([smooth[:, :n], first], 1), g1, -1)
    dx, dxy = along_w1[:, :n], along_w1[:, n:]
    dxx = _filter(smooth[:, :n], g2, -1)
    laplacian = dxx + dyy
    spread = torch.sqrt((dxx - dyy) ** 2 + 4 * dxy**2)
    return {
        "grad": torch.sqrt(dx * dx + dy * dy),
        "blob": torch.relu(-laplacian),
        "hole": torch.relu(laplacian),
        "ridge": torch.relu(-(laplacian - spread) / 2),
        "valley": torch.relu((laplacian + spread) / 2),
        "std": torch.sqrt(torch.relu(moments[:, n:] - moments[:, :n] ** 2)),
    }


def _lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] ``(B, 3, H, W)`` -> CIE L*a*b* (D65) ``(B, 3, H, W)``."""
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    matrix = torch.tensor(_RGB_TO_XYZ, device=rgb.device)
    white = torch.tensor(_WHITE, device=rgb.device).view(1, 3, 1, 1)
    xyz = torch.einsum("dc,bchw->bdhw", matrix, linear) / white
    f = torch.where(xyz > 0.008856, xyz.clamp(min=1e-12) ** (1 / 3), 7.787 * xyz + 16 / 116)
    return torch.cat(
        [116 * f[:, 1:2] - 16, 500 * (f[:, :1] - f[:, 1:2]), 200 * (f[:, 1:2] - f[:, 2:])], 1
    )


def _stain_densities(od: torch.Tensor) -> torch.Tensor:
    """Optical density ``(B, 3, H, W)`` -> H, E, DAB densities (negative parts cut)."""
    stains = torch.tensor(_STAINS, dtype=torch.float64)
    unmix = torch.linalg.inv(stains / stains.norm(dim=1, keepdim=True)).to(od)
    return torch.relu(torch.einsum("cs,bchw->bshw", unmix, od))


# ---------------------------------------------------------------------------------------------
# the features


def _smoothstep(x: torch.Tensor) -> torch.Tensor:
    """``3x^2 - 2x^3`` of ``x`` clipped to [0, 1]: a smooth step from 0 to 1."""
    x = x.clamp(0.0, 1.0)
    return x * x * (3 - 2 * x)


def _pool(x: torch.Tensor, factor: int) -> torch.Tensor:
    return F.avg_pool2d(x, factor) if factor > 1 else x


def _weighted_smooth(x: torch.Tensor, weight: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian average of cell values ``x`` (already weighted) normalised by ``weight``'s."""
    return _smooth(x, sigma) / (_smooth(weight, sigma) + 1e-3)


def _texture_stack(images: torch.Tensor) -> list[torch.Tensor]:
    """:data:`_RESPONSES` of ``images`` ``(B, n, H, W)`` at each pyramid level.

    Returns one ``(B, 6, n, h, w)`` tensor per level (responses, then images), at the level's
    resolution: ``H / 2^level``.
    """
    out = []
    for level in _TEXTURE_LEVELS:
        found = _texture(_pool(images, 2**level))
        out.append(torch.stack([found[r] for r in _RESPONSES], 1))
    return out


def raw_features(rgb: torch.Tensor) -> torch.Tensor:
    """The unscaled channels of :data:`CHANNEL_NAMES` for RGB images in [0, 1].

    Parameters
    ----------
    rgb : torch.Tensor
        ``(B, 3, H, W)`` float32 in [0, 1], ``H`` and ``W`` multiples of 8.

    Returns
    -------
    torch.Tensor
        ``(B, C, H / 8, W / 8)`` float32, non-negative, ``C = len(CHANNEL_NAMES)``.
    """
    rgb = rgb.clamp(0.0, 1.0)
    od = -torch.log((rgb * 255 + 1) / 256)  # 0 for white, ln 256 for black
    od_sum = od.sum(1, keepdim=True)
    stains = _stain_densities(od)
    haem, eosin = stains[:, :1], stains[:, 1:2]
    lab = _lab(rgb)
    lightness = lab[:, :1] / 100
    tissue = _smoothstep((od_sum - _GLASS_OD) / (_STAINED_OD - _GLASS_OD))
    cell_tissue = _pool(tissue, STRIDE)
    gate = _smoothstep((cell_tissue - 0.5) / (2 * _GATE_WIDTH) + 0.5)

    out = [gate, _pool(lightness, STRIDE), _pool(1 - lightness, STRIDE)]
    out += [_pool(torch.relu(sign * lab[:, c : c + 1]), STRIDE) for c in (1, 2) for sign in (1, -1)]
    out.append(_pool(stains, STRIDE))
    ratios = torch.cat([haem / (haem + eosin + _RATIO_EPS), od / (od_sum + _RATIO_EPS)], 1)
    out.append(_weighted_smooth(_pool(ratios * tissue, STRIDE), cell_tissue, 1.0) * gate)
    # the two textured images go through the filters together: nuclear (log H), then lightness
    levels = _texture_stack(torch.cat([torch.log(haem + _LOG_EPS), lightness], 1))
    nuclei, texture = [], []
    for level, stack in zip(_TEXTURE_LEVELS, levels, strict=True):
        factor = 2**level
        # the nuclear responses weighted by the tissue pixels, then both pooled to stride 8
        nuclei.append(_pool(stack[:, :, 0] * _pool(tissue, factor), STRIDE // factor))
        texture.append(_pool(stack[:, :, 1], STRIDE // factor))
    nuclei_cells = torch.cat(nuclei, 1)
    out += [_weighted_smooth(nuclei_cells, cell_tissue, c) * gate for c in _NUCLEI_CONTEXT]
    out.append(_smooth(torch.cat(texture, 1), _TEXTURE_CONTEXT))
    return torch.cat(out, 1)


#: Side of the tile cores large images are computed in (px, a multiple of the stride).
TILE = 512
#: Context around a tile (px): every channel's receptive radius (60 px: the level-2 texture
#: filters reach 12 px, a cell is 8 px, the widest cell smoothing 48 px), rounded up to the
#: stride. With it a tile's core gets exactly the features of the whole image.
MARGIN = 64


def calibration_images() -> list[np.ndarray]:
    """The synthetic images the channel scales are derived from (RGB uint8, 256x256).

    Four :func:`unseg.data.synthetic.he_tile` tiles (seeds 0-3) and two
    :func:`unseg.data.synthetic.blobs` tiles (seeds 0-1).
    """
    from unseg.data.synthetic import blobs, he_tile

    return [he_tile(256, random_state=s)[0] for s in range(4)] + [
        blobs(256, random_state=s)[0] for s in range(2)
    ]


def calibrate() -> np.ndarray:
    """Each channel's standard deviation over :func:`calibration_images`.

    The four halves of a* and b* share one value, the root mean square of the standard deviations
    of a* and b*: CIE Lab is built so that equal distances are equal colour differences, and a
    hue the calibration images lack (green, for a-) must not be magnified.

    Returns
    -------
    ndarray
        ``(C,)`` float64; the values stored in :data:`_CALIBRATION_STD`.
    """
    values = []
    for image in calibration_images():
        rgb = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
        with torch.inference_mode():
            values.append(raw_features(rgb)[0].flatten(1).double().numpy())
    channels = np.concatenate(values, 1)
    std = channels.std(1)
    a_pos, a_neg, b_pos, b_neg = (CHANNEL_NAMES.index(c) for c in ("a+", "a-", "b+", "b-"))
    a, b = channels[a_pos] - channels[a_neg], channels[b_pos] - channels[b_neg]
    std[[a_pos, a_neg, b_pos, b_neg]] = np.sqrt((a.var() + b.var()) / 2)
    return std


# Output of calibrate(), rounded to 4 significant digits (tests check that they agree).
_CALIBRATION_STD: tuple[float, ...] = (
    0.4507, 0.1528, 0.1528, 13.86, 13.86, 13.86, 13.86, 0.3599, 0.1833, 0.1223, 0.2583,
    0.08583, 0.237, 0.1383, 0.09202, 0.03497, 0.03536, 0.03727, 0.04154, 0.1387, 0.1453,
    0.06669, 0.05846, 0.06946, 0.07249, 0.2028, 0.1692, 0.1036, 0.07677, 0.107, 0.09668,
    0.2832, 0.08245, 0.03149, 0.03349, 0.0342, 0.03922, 0.1325, 0.1279, 0.05709, 0.0528,
    0.06015, 0.0651, 0.1816, 0.1505, 0.08687, 0.06925, 0.09226, 0.08706, 0.253, 0.01096,
    0.00335, 0.004147, 0.004119, 0.004298, 0.01399, 0.01789, 0.006587, 0.007882, 0.008474,
    0.008399, 0.02496, 0.02527, 0.01037, 0.0133, 0.01262, 0.01315, 0.03759,
)


def channel_scales() -> torch.Tensor:
    """Per-channel multipliers: ``GROUP_WEIGHTS[g] / sqrt(n_g) / calibration std``, ``(C,)``."""
    counts = {g: sum(1 for h, _ in CHANNELS_AND_GROUPS if h == g) for g in GROUP_WEIGHTS}
    weights = [GROUP_WEIGHTS[g] / math.sqrt(counts[g]) for g, _ in CHANNELS_AND_GROUPS]
    return torch.tensor(weights, dtype=torch.float64) / torch.tensor(_CALIBRATION_STD)


def features(rgb: torch.Tensor) -> torch.Tensor:
    """The default backbone's features of RGB images in [0, 1].

    Parameters
    ----------
    rgb : torch.Tensor
        ``(B, 3, H, W)`` float32 in [0, 1], ``H`` and ``W`` multiples of 8.

    Returns
    -------
    torch.Tensor
        ``(B, C, H / 8, W / 8)`` float32, non-negative: :func:`raw_features` times
        :func:`channel_scales`, with the round-off of smoothing non-negative maps (a few
        values of about -1e-8 on real images) set to zero.
    """
    scales = channel_scales().to(device=rgb.device, dtype=torch.float32)
    return (raw_features(rgb) * scales.view(1, -1, 1, 1)).clamp_min_(0)


class EmbeddedBackbone(Backbone):
    """The ``default`` backbone: :func:`features` behind the :class:`Backbone` interface.

    Needs no weights and no download; deterministic; any input whose sides are multiples of 8.
    """

    CHANNELS = len(CHANNEL_NAMES)
    STRIDE = STRIDE
    LAYER = "handcrafted"
    DESCRIPTION = (
        "embedded classical features (colour, stain deconvolution, multi-scale texture); "
        "no weights"
    )

    def __init__(self) -> None:
        # No training size: 64 px (8 x 8 cells) is the tile a concept bank pools by default,
        # small enough that a tile shows one tissue, large enough to pool its texture.
        self.config = BackboneConfig(
            name="default", source="embedded", layer=self.LAYER, channels=self.CHANNELS,
            stride=STRIDE, size_multiple=STRIDE, input_size=64, mean=(0.0, 0.0, 0.0),
            std=(1.0, 1.0, 1.0), licence="Apache-2.0 (part of unseg)", weights="none",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """RGB ``(B, 3, H, W)`` in [0, 1] -> ``(B, C, H / 8, W / 8)``, non-negative.

        Images larger than a tile are computed tile by tile (:data:`TILE` px cores, each with
        :data:`MARGIN` px of context): the same features, bit for bit, with memory and time
        that grow with the pixels, not faster.
        """
        batch, _, height, width = x.shape
        if height <= TILE + 2 * MARGIN and width <= TILE + 2 * MARGIN:
            return features(x)
        out = x.new_empty(batch, self.CHANNELS, height // STRIDE, width // STRIDE)
        for y0 in range(0, height, TILE):
            for x0 in range(0, width, TILE):
                y1, x1 = min(y0 + TILE, height), min(x0 + TILE, width)
                ya, xa = max(0, y0 - MARGIN), max(0, x0 - MARGIN)
                cells = features(x[:, :, ya : min(height, y1 + MARGIN),
                                   xa : min(width, x1 + MARGIN)])
                out[:, :, y0 // STRIDE : y1 // STRIDE, x0 // STRIDE : x1 // STRIDE] = cells[
                    :, :, (y0 - ya) // STRIDE : (y1 - ya) // STRIDE,
                    (x0 - xa) // STRIDE : (x1 - xa) // STRIDE]
        return out
