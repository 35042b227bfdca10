"""Pictures of a run: predicted against true edit distance on the test pairs."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_pred_vs_true(
    pred: np.ndarray, true: np.ndarray, path: str | os.PathLike, title: str
) -> None:
    """Hexbin of predicted vs exact edit distance with the identity line, written atomically."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    hb = ax.hexbin(true, pred, gridsize=60, bins="log", cmap="viridis", mincnt=1)
    top = float(max(true.max(initial=1), pred.max(initial=1)))
    ax.plot([0, top], [0, top], "r--", lw=1, label="y = x")
    ax.set_xlabel("exact edit distance")
    ax.set_ylabel("predicted edit distance (L x embedding distance)")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left")
    fig.colorbar(hb, ax=ax, label="pairs (log)")
    fig.tight_layout()
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
