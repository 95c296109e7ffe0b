"""Plots written as PNG files (matplotlib, from the ``report`` extra)."""

from __future__ import annotations

from pathlib import Path

from unseg._optional import optional_import


def bar_plot(values: dict[str, float], path: Path, *, title: str, ylabel: str) -> Path:
    """A bar per key, labelled with its value, saved atomically as PNG."""
    from unseg.io import atomic_write

    matplotlib = optional_import("matplotlib", "report")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(values)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(names) + 1.5), 3.6), dpi=120)
    bars = ax.bar(names, [values[n] for n in names], color="#4c72b0")
    ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.set_ylim(0, max(1.0, max(values.values(), default=0) * 1.15))
    ax.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    with atomic_write(Path(path)) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
