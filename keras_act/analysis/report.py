"""Statistics tables: Markdown for people, JSON for programs."""

import json
import math
import os

from keras_act.depth_categories import CATEGORY_TITLES, DEPTH_CATEGORIES

# Mean updates per category reported by Simoulin & Crabbé (2021) for their
# pre-trained models (rows of `DEPTH_CATEGORIES`).
PAPER_MEAN_UPDATES = {
    "tiny": dict(zip(DEPTH_CATEGORIES, (3.8, 3.5, 5.8, 5.8, 4.0, 6.0, 2.5), strict=True)),
    "base": dict(zip(DEPTH_CATEGORIES, (10.0, 9.2, 16.0, 16.0, 10.5, 22.5, 8.4), strict=True)),
}
STATISTICS_MARKDOWN = "depth_statistics.md"
STATISTICS_JSON = "depth_statistics.json"


def _format(value, digits=2):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def statistics_markdown(statistics, paper=None, title="Depth statistics"):
    """The statistics as Markdown tables.

    Args:
        statistics: a `DepthStatistics`.
        paper: optional `"tiny"` or `"base"`: add the paper's column.
        title: str, the heading.

    Returns:
        str: the mean updates per category (with the paper's, when asked),
        the histogram of updates per category (share of tokens), the means
        by frequency band and by position.
    """
    paper_means = _paper_means(paper)
    data = statistics.to_dict()
    lines = [f"# {title}", "", f"{data['num_examples']} examples.", ""]
    lines += ["## Mean updates per token category", ""]
    header = "| Category | Tokens | Mean updates |"
    rule = "| --- | ---: | ---: |"
    if paper_means:
        header += f" Paper ({paper}) |"
        rule += " ---: |"
    lines += [header, rule]
    for row in data["categories"]:
        line = f"| {row['title']} | {row['count']} | {_format(row['mean_updates'])} |"
        if paper_means:
            line += f" {_format(paper_means[row['name']], 1)} |"
        lines.append(line)

    length = max((len(row["histogram"]) for row in data["categories"]), default=0)
    if length > 1:
        lines += ["", "## Share of tokens by number of updates (%)", ""]
        lines.append("| Category | " + " | ".join(str(k) for k in range(1, length)) + " |")
        lines.append("| --- |" + " ---: |" * (length - 1))
        for row in data["categories"]:
            total = sum(row["histogram"])
            shares = [
                _format(100.0 * c / total, 1) if total else "-" for c in row["histogram"][1:]
            ]
            lines.append(f"| {row['title']} | " + " | ".join(shares) + " |")

    if data["frequency_bands"]:
        lines += [
            "",
            "## Mean updates by corpus frequency of the (original) token",
            "",
            "| Occurrences | Unmasked tokens | Mean updates | MLM targets | Mean updates |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for row in data["frequency_bands"]:
            if row["unmasked_count"] or row["masked_count"]:
                lines.append(
                    f"| {row['band']} | {row['unmasked_count']} | {_format(row['unmasked_mean'])} | "
                    f"{row['masked_count']} | {_format(row['masked_mean'])} |"
                )

    buckets = data["positions"]["buckets"]
    if buckets:
        lines += [
            "",
            "## Mean updates by position (real tokens)",
            "",
            "| Positions | Tokens | Mean updates |",
            "| --- | ---: | ---: |",
        ]
        for row in buckets:
            span = str(row["start"]) if row["end"] - row["start"] == 1 else f"{row['start']}-{row['end'] - 1}"
            lines.append(f"| {span} | {row['count']} | {_format(row['mean'])} |")
    return "\n".join(lines) + "\n"


def statistics_json(statistics, paper=None, **metadata):
    """The statistics as a JSON string (see `DepthStatistics.to_dict`).

    Args:
        statistics: a `DepthStatistics`.
        paper: optional `"tiny"` or `"base"`: add `paper_mean_updates`.
        **metadata: JSON-serialisable values stored under `metadata`.

    Returns:
        str.
    """
    data = statistics.to_dict()
    data["metadata"] = metadata
    if paper:
        data["paper"] = paper
        data["paper_mean_updates"] = _paper_means(paper)
    return json.dumps(_finite(data), indent=2, sort_keys=True)


def write_statistics(statistics, out_dir, paper=None, **metadata):
    """Writes `depth_statistics.md` and `depth_statistics.json` to `out_dir`.

    Returns:
        A tuple of the two paths.
    """
    os.makedirs(out_dir, exist_ok=True)
    markdown_path = os.path.join(out_dir, STATISTICS_MARKDOWN)
    json_path = os.path.join(out_dir, STATISTICS_JSON)
    with open(markdown_path, "w", encoding="utf-8") as file:
        file.write(statistics_markdown(statistics, paper=paper))
    with open(json_path, "w", encoding="utf-8") as file:
        file.write(statistics_json(statistics, paper=paper, **metadata) + "\n")
    return markdown_path, json_path


def category_table_markdown(statistics):
    """The one-table summary (category, tokens, mean) used in TensorBoard."""
    means = statistics.means()
    lines = ["| Category | Tokens | Mean updates |", "| --- | ---: | ---: |"]
    for name in DEPTH_CATEGORIES:
        lines.append(f"| {CATEGORY_TITLES[name]} | {statistics.counts[name]} | {_format(means[name])} |")
    return "\n".join(lines)


def _paper_means(paper):
    if paper is None:
        return None
    if paper not in PAPER_MEAN_UPDATES:
        raise ValueError(
            f"`paper` must be one of {sorted(PAPER_MEAN_UPDATES)} (the paper's columns "
            f"known here). Received: paper={paper!r}"
        )
    return PAPER_MEAN_UPDATES[paper]


def _finite(value):
    """NaN (an empty category) as JSON `null`."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "item"):
        return _finite(value.item())
    return value
