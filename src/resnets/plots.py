"""Figures in the style of the paper: training error thin, validation error bold, vs iterations."""

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .io import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _palette(name: str = "tab10"):
    """A matplotlib colour map, imported when a figure is drawn (0.4 s): a process that never
    draws one (a run stopped before its end, a rank other than 0) never pays for matplotlib."""
    from matplotlib import colormaps

    return colormaps[name]


def subplots(nrows: int = 1, ncols: int = 1, *, figsize=None, dpi=None, **kw) -> tuple[Figure, Any]:
    """A figure and its axes, without pyplot: no global state, no GUI backend, safe in threads
    and servers (``fig.savefig`` renders with Agg)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    return fig, fig.subplots(nrows, ncols, **kw)


def save_figure(fig: Figure, out: str | Path, **kwargs: Any) -> Path:
    """Render ``fig`` as PNG and write it atomically: a reader (or an interrupted write) never
    sees half a figure, and a full disk leaves the old file in place."""
    buffer = BytesIO()
    fig.savefig(buffer, format="png", **kwargs)
    atomic_write_bytes(out, buffer.getvalue())
    return Path(out)


def _draw(ax, rows: list[dict[str, Any]], label: str, color) -> None:
    steps = [r["step"] for r in rows]
    tr = [100 * r["train_err"] for r in rows]
    ax.plot(steps, tr, color=color, lw=0.8, ls="--", alpha=0.9)
    val = [(r["step"], 100 * r["val_err"]) for r in rows if r.get("val_err") is not None]
    if val:
        ax.plot(*zip(*val), color=color, lw=2.2, label=label)
    else:
        ax.plot([], [], color=color, lw=2.2, label=label)


def plot_curves(runs: dict[str, list[dict[str, Any]]], out: str | Path, title: str = "") -> Path:
    """One panel: each run's training error (dashed, thin) and validation error (bold)."""
    return plot_panels([(title, runs)], out, width=6.4)


def plot_panels(
    panels: Sequence[tuple[str, dict[str, list[dict[str, Any]]]]],
    out: str | Path,
    width: float = 5.2,
    *,
    x_max: float | None = None,
    marks: Sequence[float] = (),
) -> Path:
    """Side-by-side panels (e.g. the paper's Fig. 6: plain left, residual right), shared y axis.
    ``x_max``: the iterations axis ends there (a whole schedule, whatever the runs reached);
    ``marks``: iterations drawn as dotted lines (the learning-rate drops). A panel with no run
    says so."""
    fig, axes = subplots(1, len(panels), figsize=(width * len(panels), 4.2), dpi=120, sharey=True)
    axes = np.atleast_1d(axes)
    colors = _palette("tab10")(np.arange(10))
    for ax, (title, runs) in zip(axes, panels):
        for i, (label, rows) in enumerate(runs.items()):
            _draw(ax, rows, label, colors[i % 10])
        for x in marks:
            ax.axvline(x, color="grey", lw=0.8, ls=":")
        if x_max is not None:
            ax.set_xlim(0, x_max)
        if runs:
            _style(ax, title)
        else:
            ax.text(0.5, 0.5, "no run recorded yet", ha="center", transform=ax.transAxes)
            ax.set_xlabel("iterations")
            ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, out)
    return Path(out)


def _style(ax, title: str) -> None:
    ax.set_xlabel("iterations")
    ax.set_ylabel("error (%)")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(
        loc="lower left", fontsize=8, title="bold: validation, dashed: training", title_fontsize=7
    )
    ax.set_ylim(bottom=0)


def plot_confusion(
    confusion: np.ndarray, classes: list[str], out: str | Path, title: str = ""
) -> Path:
    k = len(classes)
    size = max(4.0, min(14.0, 0.45 * k + 2))
    fig, ax = subplots(figsize=(size, size), dpi=110)
    totals = confusion.sum(1, keepdims=True)
    norm = confusion / np.maximum(totals, 1)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if k <= 30:
        ax.set_xticks(range(k), classes, rotation=90, fontsize=7)
        ax.set_yticks(range(k), classes, fontsize=7)
        if k <= 15:
            for i in range(k):
                for j in range(k):
                    if confusion[i, j]:
                        ax.text(
                            j,
                            i,
                            int(confusion[i, j]),
                            ha="center",
                            va="center",
                            fontsize=6,
                            color="white" if norm[i, j] > 0.5 else "black",
                        )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix (row-normalised colour, counts)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    save_figure(fig, out)
    return Path(out)


def plot_label_curves(
    curves: dict[str, list[tuple[float, float, float]]],
    out: str | Path,
    title: str = "",
    xlabel: str = "labelled training images per class",
) -> Path:
    """Accuracy (%) against a count on a log axis, one line per method: ``(x, mean, std)``."""
    fig, ax = subplots(figsize=(6.2, 4.3), dpi=120)
    colors = _palette("tab10")(np.arange(10))
    for i, (label, pts) in enumerate(curves.items()):
        xs, ms, ss = (np.array(v, dtype=float) for v in zip(*pts))
        ax.errorbar(
            xs,
            100 * ms,
            yerr=100 * ss,
            color=colors[i % 10],
            marker="o",
            lw=1.8,
            capsize=3,
            label=label,
        )
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("validation accuracy (%)")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    save_figure(fig, out)
    return Path(out)


def plot_explanation(
    panels: Sequence[tuple[str, np.ndarray]],
    bars: Sequence[tuple[str, float]],
    out: str | Path,
    title: str = "",
) -> Path:
    """Images side by side (each ``(H, W, 3)`` uint8, e.g. the input and heat-map overlays)
    and a horizontal bar chart of class probabilities (most probable on top)."""
    n = len(panels)
    fig, axes = subplots(
        1,
        n + 1,
        figsize=(3.0 * n + 3.4, 3.4),
        dpi=110,
        gridspec_kw={"width_ratios": [1] * n + [1.15]},
    )
    for ax, (name, img) in zip(axes[:n], panels):
        ax.imshow(img, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    ax = axes[n]
    labels = [b[0] for b in bars][::-1]
    probs = [100 * b[1] for b in bars][::-1]
    ax.barh(range(len(bars)), probs, color=_palette("tab10")(0))
    ax.set_yticks(range(len(bars)), labels, fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_xlabel("probability (%)", fontsize=8)
    for i, p in enumerate(probs):
        ax.text(min(p + 2, 70), i, f"{p:.1f}%", va="center", fontsize=7)
    ax.set_title("top classes", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, out)
    return Path(out)


def plot_reliability(
    bins: list[dict[str, float]], out: str | Path, title: str = "", ece: float | None = None
) -> Path:
    """The reliability diagram: accuracy against confidence per bin (bars), the diagonal of a
    perfectly calibrated model, and the images in each bin (lower panel, log scale)."""
    fig, (ax, counts_ax) = subplots(
        2, 1, figsize=(5.5, 6.5), dpi=110, gridspec_kw={"height_ratios": [3, 1]}, sharex=True
    )
    centres = [(b["low"] + b["high"]) / 2 for b in bins]
    width = bins[0]["high"] - bins[0]["low"] if bins else 0.1
    accuracy = [b["accuracy"] if b["count"] else 0.0 for b in bins]
    confidence = [b["confidence"] if b["count"] else c for b, c in zip(bins, centres)]
    ax.bar(centres, accuracy, width=width * 0.95, color="tab:blue", label="accuracy")
    ax.bar(
        centres,
        [c - a if b["count"] else 0 for b, a, c in zip(bins, accuracy, confidence)],
        bottom=accuracy,
        width=width * 0.95,
        color="tab:red",
        alpha=0.35,
        label="gap to confidence",
    )
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title + (f"  (ECE {ece:.2%})" if ece is not None else ""), fontsize=10)
    counts_ax.bar(centres, [max(b["count"], 0) for b in bins], width=width * 0.95, color="grey")
    counts_ax.set_yscale("symlog")
    counts_ax.set_xlabel("confidence (top probability)")
    counts_ax.set_ylabel("images")
    fig.tight_layout()
    return save_figure(fig, out)


def plot_corruptions(
    rows: list[tuple[str, int, float]], clean: float, out: str | Path, title: str = ""
) -> Path:
    """Accuracy against severity, one line per corruption (grouped by colour family), the
    mean over corruptions bold, the clean accuracy dashed."""
    fig, ax = subplots(figsize=(8, 5), dpi=110)
    names = list(dict.fromkeys(r[0] for r in rows))
    cmap = _palette("tab20")
    severities = sorted({r[1] for r in rows})
    for i, name in enumerate(names):
        ys = [100 * a for n, s, a in rows if n == name]
        ax.plot(severities, ys, marker="o", ms=3, lw=1, color=cmap(i % 20), label=name)
    mean = [100 * float(np.mean([a for _, s, a in rows if s == v])) for v in severities]
    ax.plot(severities, mean, color="black", lw=3, label="mean")
    ax.axhline(100 * clean, color="black", ls="--", lw=1, label="clean")
    ax.set_xlabel("severity")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_xticks(severities)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out)
