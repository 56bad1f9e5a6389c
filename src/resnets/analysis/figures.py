"""The analysis figures that are not curves of training (those are in resnets/plots.py): layer
responses (paper Fig. 7) and gradient norms. Fed plain numbers; matplotlib through plots.py."""

from __future__ import annotations

from pathlib import Path

from ..plots import save_figure, subplots


def plot_responses(curves: dict[str, tuple[list[float], list[float]]], path: Path) -> Path:
    """Fig. 7: each net's response std per 3x3 layer, in layer order (top) and sorted (bottom);
    plain nets dashed."""
    fig, axes = subplots(2, 1, figsize=(7, 6.5), dpi=120)
    for name, (layer_order, sorted_order) in curves.items():
        style = "--" if name.startswith("plain") else "-"
        axes[0].plot(range(1, len(layer_order) + 1), layer_order, ls=style, label=name)
        axes[1].plot(range(1, len(sorted_order) + 1), sorted_order, ls=style, label=name)
    axes[0].set_xlabel("layer index (original order)")
    axes[1].set_xlabel("layer index (sorted by magnitude)")
    for ax in axes:
        ax.set_ylabel("std of response")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Std of 3x3 layer responses (after BN, before addition/ReLU), validation set")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_gradients(
    init_curves: dict[tuple[str, bool], list[float]],
    train_curves: dict[str, dict[int, list[float]]],
    path: Path,
) -> Path:
    """Weight-gradient norms per conv layer: at initialisation with and without BN, and at the
    last recorded iteration of training; plain nets dashed."""
    fig, axes = subplots(1, 3, figsize=(16, 4.4), dpi=110)
    for (name, batchnorm), norms in init_curves.items():
        ax = axes[0] if batchnorm else axes[1]
        style = "--" if name.startswith("plain") else "-"
        ax.semilogy(range(1, len(norms) + 1), norms, ls=style, label=name)
    for name, record in train_curves.items():
        if record:
            last = max(record)
            style = "--" if name.startswith("plain") else "-"
            axes[2].semilogy(
                range(1, len(record[last]) + 1),
                record[last],
                ls=style,
                label=f"{name} @ iter {last}",
            )
    titles = (
        "at initialisation, with BN",
        "at initialisation, without BN",
        "late in training, with BN",
    )
    for ax, title in zip(axes, titles):
        ax.set_title(title)
        ax.set_xlabel("conv layer (input -> output)")
        ax.set_ylabel("weight-gradient L2 norm")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)
