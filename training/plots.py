"""Plots written by the training stages (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["plot_loss", "plot_eval"]


def plot_loss(history: list[dict], path: str | Path, title: str = "pretraining loss") -> Path:
    """Training and held-out loss (nats/token) against tokens seen, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [h for h in history if "loss" in h]
    held = [h for h in history if "heldout_loss" in h]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        ax.plot(
            [h["tokens"] / 1e6 for h in train], [h["loss"] for h in train], lw=1, alpha=0.8, label="train"
        )
    if held:
        ax.plot(
            [h["tokens"] / 1e6 for h in held], [h["heldout_loss"] for h in held], "o-", ms=3, label="held-out"
        )
    ax.set_xlabel("tokens seen (millions)")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_eval(results: dict[str, float], path: str | Path, title: str = "evaluation") -> Path:
    """Bar chart of evaluation metrics (values in [0, 1] are shown as percentages)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    values = [results[n] for n in names]
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    bars = ax.bar(names, values, color="#4a7ebb")
    for bar, value in zip(bars, values, strict=True):
        ax.annotate(
            f"{value:.3g}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom"
        )
    ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=15)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
