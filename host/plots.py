"""Figures as PNG files (matplotlib's Agg backend so no display is needed): the loss curves, and the one
way every figure of the CLI is saved."""

import numpy as np

from dpfm.golden.contract.files import atomic_path


def plot_loss_curves(curves: dict, path, title: str) -> None:
    """One line per label: `curves[label] = (train_losses, val_losses or None)`, log-scale y.

    Training loss solid, validation dashed in the same colour, legend outside the axes; non-finite points (a diverged run) are
    left out rather than breaking the log axis. Written atomically.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5), dpi=110)
    colours = plt.get_cmap("tab10")(np.arange(len(curves)) % 10)
    for colour, (label, (train, val)) in zip(colours, curves.items()):
        for values, style in ((train, "-"), (val, "--")):
            if values is None:
                continue
            y = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
            y[~np.isfinite(y) | (y <= 0)] = np.nan
            ax.plot(np.arange(1, len(y) + 1), y, style, color=colour, lw=1.4,
                    label=label if style == "-" else None)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    has_val = any(val is not None for _, val in curves.values())
    ax.set_title(title + ("\n(solid: training loss, dashed: validation loss)" if has_val else ""), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    save_figure(fig, path)


def save_figure(fig, path, **savefig_options) -> None:
    """Write `fig` as a PNG atomically (a failed save leaves the old file) and close it either way, so a
    long-running command does not accumulate figures."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", **savefig_options)
    finally:
        plt.close(fig)
