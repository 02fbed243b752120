"""Pictures of the depth: per-token heat-map, histograms per category, profiles.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot
state, no display needed) and written as PNG; every function takes `figsize`
(inches) and `dpi`, and the PNG is exactly `figsize * dpi` pixels.
"""

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from keras_act.depth_categories import CATEGORY_TITLES, DEPTH_CATEGORIES

COLORMAP = "viridis"


def _figure(figsize, dpi):
    figure = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure, path=None):
    """Writes `figure` as PNG to `path` (when given) and returns the PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=figure.dpi)
    data = buffer.getvalue()
    if path is not None:
        with open(path, "wb") as file:
            file.write(data)
    return data


def heatmap_figsize(depths):
    """The default `figsize` of `plot_depth_heatmap` for these sentences."""
    longest = max(len(d) for d in depths)
    return (max(6.0, 0.45 * longest + 1.5), 1.35 * len(depths) + 0.6)


def plot_depth_heatmap(depths, path=None, max_layers=None, figsize=None, dpi=100, title=None):
    """Heat-map of the updates of each token, one row per sentence.

    Each row is a sentence, its pieces along the horizontal axis and the
    number of updates written in each cell; all rows share one color scale
    (0 to `max_layers`).

    Args:
        depths: a non-empty list of `SentenceDepth`.
        path: optional str, where to write the PNG.
        max_layers: optional int, the top of the color scale. Defaults to
            the largest number of updates shown.
        figsize: optional `(width, height)` in inches. Defaults to
            `heatmap_figsize(depths)`.
        dpi: int. Defaults to 100.
        title: optional str.

    Returns:
        The matplotlib `Figure`.

    Example:

    ```python
    depths = sentence_depths(backbone, ["The cat sat.", "A dog ran."], tokenizer=tokenizer)
    plot_depth_heatmap(depths, "heatmap.png", max_layers=backbone.max_layers)
    ```
    """
    if not depths:
        raise ValueError("`depths` must hold at least one sentence.")
    figure = _figure(figsize or heatmap_figsize(depths), dpi)
    top = max_layers or max(float(np.max(d.updates)) for d in depths) or 1.0
    longest = max(len(d) for d in depths)
    axes = figure.subplots(len(depths), 1, squeeze=False)[:, 0]
    image = None
    for ax, depth in zip(axes, depths, strict=True):
        values = np.full((1, longest), np.nan)
        values[0, : len(depth)] = depth.updates
        image = ax.imshow(
            np.ma.masked_invalid(values), cmap=COLORMAP, vmin=0, vmax=top, aspect="auto"
        )
        for i, value in enumerate(depth.updates):
            color = "white" if value < 0.6 * top else "black"
            ax.text(i, 0, f"{value:g}", ha="center", va="center", color=color, fontsize=8)
        ax.set_xticks(range(len(depth)))
        ax.set_xticklabels(depth.pieces, rotation=60, ha="right", fontsize=8)
        ax.set_xlim(-0.5, longest - 0.5)
        ax.set_yticks([])
        ax.tick_params(length=0)
    figure.colorbar(image, ax=list(axes), label="updates", shrink=0.9)
    figure.suptitle(title or "Updates per token")
    if path is not None:
        save_figure(figure, path)
    return figure


def plot_category_histograms(
    statistics, path=None, paper_means=None, figsize=(14.0, 6.0), dpi=100, title=None
):
    """Histogram of the updates of each token category, and their means.

    One panel per category of the paper (the share of its tokens that
    received 1, 2, ... updates, with the mean marked), and a last panel of
    the means side by side (next to the paper's, when given).

    Args:
        statistics: a `DepthStatistics`.
        path: optional str, where to write the PNG.
        paper_means: optional dict `{category: mean}` drawn beside ours.
        figsize: `(width, height)` in inches. Defaults to `(14, 6)`.
        dpi: int. Defaults to 100.
        title: optional str.

    Returns:
        The matplotlib `Figure`.
    """
    figure = _figure(figsize, dpi)
    axes = figure.subplots(2, 4).ravel()
    length = max(statistics.max_updates + 1, 2)
    means = statistics.means()
    for ax, name in zip(axes, DEPTH_CATEGORIES, strict=False):
        counts = statistics.histogram(name, length).astype(float)
        total = counts.sum()
        ax.bar(np.arange(length), counts / total if total else counts, color="tab:blue")
        if total:
            ax.axvline(means[name], color="tab:red", linestyle="--", label=f"mean {means[name]:.2f}")
            ax.legend(fontsize=7, loc="upper left")
        ax.set_title(f"{CATEGORY_TITLES[name]} (n={int(total)})", fontsize=9)
        ax.set_xticks(np.arange(1, length))
        ax.set_xlim(0.5, length - 0.5)
        ax.set_xlabel("updates", fontsize=8)
        ax.tick_params(labelsize=7)
    ax = axes[len(DEPTH_CATEGORIES)]
    positions = np.arange(len(DEPTH_CATEGORIES))
    ours = [means[name] if statistics.counts[name] else 0.0 for name in DEPTH_CATEGORIES]
    width = 0.4 if paper_means else 0.8
    ax.bar(positions - (width / 2 if paper_means else 0), ours, width, label="this model")
    if paper_means:
        ax.bar(
            positions + width / 2,
            [paper_means.get(name, 0.0) for name in DEPTH_CATEGORIES],
            width,
            label="paper",
        )
    ax.set_xticks(positions)
    ax.set_xticklabels([CATEGORY_TITLES[n] for n in DEPTH_CATEGORIES], rotation=60, ha="right", fontsize=7)
    ax.set_title("Mean updates", fontsize=9)
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=7)
    figure.suptitle(title or "Updates per token category (share of tokens)")
    if path is not None:
        save_figure(figure, path)
    return figure


def plot_depth_profiles(statistics, path=None, figsize=(12.0, 4.0), dpi=100, title=None):
    """Mean updates by token frequency band and by position in the sequence.

    Args:
        statistics: a `DepthStatistics`.
        path: optional str, where to write the PNG.
        figsize: `(width, height)` in inches. Defaults to `(12, 4)`.
        dpi: int. Defaults to 100.
        title: optional str.

    Returns:
        The matplotlib `Figure`.
    """
    figure = _figure(figsize, dpi)
    band_ax, position_ax = figure.subplots(1, 2)
    rows = [r for r in statistics.frequency_bands() if r["unmasked_count"] or r["masked_count"]]
    if rows:
        positions = np.arange(len(rows))
        for offset, group, label in ((-0.2, "unmasked", "unmasked"), (0.2, "masked", "MLM targets")):
            values = [row[f"{group}_mean"] or 0.0 for row in rows]
            band_ax.bar(positions + offset, values, 0.4, label=label)
        band_ax.set_xticks(positions)
        band_ax.set_xticklabels([row["band"] for row in rows])
        band_ax.legend(fontsize=8)
    band_ax.set_xlabel("occurrences of the (original) token in the corpus")
    band_ax.set_ylabel("mean updates")
    band_ax.set_title("By token frequency", fontsize=10)
    means = statistics.position_means()
    xs = [i for i, m in enumerate(means) if m is not None]
    position_ax.plot(xs, [means[i] for i in xs], marker=".", linewidth=1)
    position_ax.set_xlabel("position in the sequence")
    position_ax.set_ylabel("mean updates")
    position_ax.set_title("By position (real tokens)", fontsize=10)
    figure.suptitle(title or "Depth profiles")
    if path is not None:
        save_figure(figure, path)
    return figure
