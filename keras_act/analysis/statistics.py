"""`DepthStatistics`: updates aggregated by token category, frequency and position.

The categories are the rows of the paper's table (`keras_act.depth_categories`,
the same masks the pre-training loop logs): all tokens, unmasked tokens, the
three kinds of masked-LM targets, `[CLS]` and `[SEP]`. For each category the
statistics keep the sum of updates, the count and the histogram of updates.
Real tokens are also grouped by the corpus frequency of their original token
(before masking: unmasked tokens and masked-LM targets apart) and by their
position in the packed sequence.
"""

import numpy as np

from keras_act.depth_categories import (
    CATEGORY_TITLES,
    DEPTH_CATEGORIES,
    depth_category_masks,
    depth_category_sums,
)

# Lower edges of the frequency bands: a token seen `n` times in the corpus
# falls in the last band whose edge is <= n.
DEFAULT_FREQUENCY_EDGES = (0, 1, 10, 100, 1000)
MASKED_CATEGORIES = ("mask_mask", "mask_random", "mask_original")
# Position buckets of the Markdown table: [start, end).
POSITION_BUCKETS = ((0, 1), (1, 8), (8, 16), (16, 32), (32, 64), (64, 128), (128, 256), (256, 512))


def frequency_band_names(edges=DEFAULT_FREQUENCY_EDGES):
    """Names of the bands of `edges`: `"0"`, `"1-9"`, ..., `">=1000"`."""
    names = []
    for lower, upper in zip(edges, list(edges[1:]) + [None], strict=True):
        if upper is None:
            names.append(f">={lower}")
        elif upper - lower == 1:
            names.append(str(lower))
        else:
            names.append(f"{lower}-{upper - 1}")
    return names


class DepthStatistics:
    """Accumulates per-token updates over batches of (masked) examples.

    Args:
        token_frequencies: optional int array `[vocabulary_size]`, how often
            each token id occurs in the corpus (for the frequency bands).
            Without it, the bands are not computed.
        frequency_edges: increasing ints, the lower edges of the frequency
            bands. Defaults to `(0, 1, 10, 100, 1000)`.
        cls_token_id, sep_token_id, mask_token_id: ints (ALBERT's 2, 3, 4).
        max_layers: optional int, the model's cap: histograms span at least
            `0..max_layers`.

    Example:

    ```python
    statistics = DepthStatistics(token_frequencies=np.bincount(all_ids))
    statistics.update(features, targets, outputs["updates"])
    statistics.means()  # {"all": 3.1, "unmasked": 2.9, "mask_mask": 4.2, ...}
    ```
    """

    def __init__(
        self,
        token_frequencies=None,
        frequency_edges=DEFAULT_FREQUENCY_EDGES,
        cls_token_id=2,
        sep_token_id=3,
        mask_token_id=4,
        max_layers=None,
    ):
        edges = tuple(int(e) for e in frequency_edges)
        if not edges or any(b <= a for a, b in zip(edges, edges[1:], strict=False)) or edges[0] < 0:
            raise ValueError(
                "`frequency_edges` must be non-negative, strictly increasing ints. "
                f"Received: frequency_edges={frequency_edges!r}"
            )
        self.token_frequencies = (
            None if token_frequencies is None else np.asarray(token_frequencies, np.int64)
        )
        self.frequency_edges = edges
        self.max_layers = None if max_layers is None else int(max_layers)
        self.special_ids = {
            "cls_token_id": int(cls_token_id),
            "sep_token_id": int(sep_token_id),
            "mask_token_id": int(mask_token_id),
        }
        self.sums = dict.fromkeys(DEPTH_CATEGORIES, 0.0)
        self.counts = dict.fromkeys(DEPTH_CATEGORIES, 0)
        self.histograms = {name: np.zeros(0, np.int64) for name in DEPTH_CATEGORIES}
        self.band_sums = {group: np.zeros(len(edges)) for group in ("unmasked", "masked")}
        self.band_counts = {group: np.zeros(len(edges), np.int64) for group in ("unmasked", "masked")}
        self.position_sums = np.zeros(0)
        self.position_counts = np.zeros(0, np.int64)
        self.num_examples = 0

    def update(self, features, targets, updates):
        """Adds a batch.

        Args:
            features: dict with `token_ids`, `padding_mask` `[batch, seq]`
                (the model's input, after masking) and, for masked examples,
                `mask_positions` `[batch, predictions]`.
            targets: dict with `mask_ids` and `mask_weights`
                `[batch, predictions]`, or `None` (nothing masked).
            updates: float `[batch, seq]`, the model's `updates`.
        """
        token_ids = np.asarray(features["token_ids"], np.int32)
        padding_mask = np.asarray(features["padding_mask"]).astype(bool)
        updates = np.asarray(updates, np.float32)
        if updates.shape != token_ids.shape:
            raise ValueError(
                f"`updates` must have the shape of `token_ids`. Received: "
                f"updates.shape={updates.shape}, token_ids.shape={token_ids.shape}"
            )
        masked = targets is not None and "mask_positions" in features
        masks = depth_category_masks(
            token_ids,
            padding_mask,
            features["mask_positions"] if masked else None,
            targets["mask_ids"] if masked else None,
            targets["mask_weights"] if masked else None,
            **self.special_ids,
        )
        sums = depth_category_sums(updates, masks)
        masks = {name: np.asarray(mask) for name, mask in masks.items()}
        for name in DEPTH_CATEGORIES:
            total, count = sums[name]
            self.sums[name] += float(total)
            self.counts[name] += int(count)
            values = np.rint(updates[masks[name]]).astype(np.int64)
            self.histograms[name] = _add(self.histograms[name], np.bincount(values))
        self.num_examples += token_ids.shape[0]

        if self.token_frequencies is not None:
            originals = original_token_ids(token_ids, features, targets) if masked else token_ids
            is_masked = np.zeros_like(padding_mask)
            for name in MASKED_CATEGORIES:
                is_masked |= masks[name]
            bands = self.frequency_band(originals)
            for group, mask in (("unmasked", masks["unmasked"]), ("masked", is_masked)):
                self.band_sums[group] += np.bincount(
                    bands[mask], weights=updates[mask], minlength=len(self.frequency_edges)
                )
                self.band_counts[group] += np.bincount(
                    bands[mask], minlength=len(self.frequency_edges)
                )

        real = masks["all"]
        self.position_sums = _add(self.position_sums, np.sum(updates * real, axis=0))
        self.position_counts = _add(self.position_counts, np.sum(real, axis=0).astype(np.int64))

    def frequency_band(self, token_ids):
        """The band index of each token id (by `token_frequencies`)."""
        ids = np.asarray(token_ids)
        frequencies = np.zeros(ids.shape, np.int64)
        known = (ids >= 0) & (ids < len(self.token_frequencies))
        frequencies[known] = self.token_frequencies[ids[known]]
        return np.searchsorted(np.asarray(self.frequency_edges), frequencies, side="right") - 1

    def means(self):
        """Mean updates per category (`nan` for an empty category)."""
        return {
            name: self.sums[name] / self.counts[name] if self.counts[name] else float("nan")
            for name in DEPTH_CATEGORIES
        }

    def histogram(self, name, length=None):
        """Counts of tokens of category `name` with 0, 1, 2, ... updates."""
        counts = self.histograms[name]
        length = max(length or 0, len(counts))
        return np.pad(counts, (0, length - len(counts)))

    @property
    def max_updates(self):
        """The largest number of updates seen, or `max_layers` if larger."""
        seen = max((len(h) - 1 for h in self.histograms.values() if len(h)), default=0)
        return max(seen, self.max_layers or 0)

    def frequency_bands(self):
        """Rows `{band, lower, unmasked_count, unmasked_mean, masked_count, masked_mean}`."""
        if self.token_frequencies is None:
            return []
        rows = []
        for i, name in enumerate(frequency_band_names(self.frequency_edges)):
            row = {"band": name, "lower": self.frequency_edges[i]}
            for group in ("unmasked", "masked"):
                count = int(self.band_counts[group][i])
                row[f"{group}_count"] = count
                row[f"{group}_mean"] = self.band_sums[group][i] / count if count else None
            rows.append(row)
        return rows

    def position_means(self):
        """Mean updates of real tokens at each position (`None` where none)."""
        return [
            float(s / c) if c else None
            for s, c in zip(self.position_sums, self.position_counts, strict=True)
        ]

    def position_buckets(self, buckets=POSITION_BUCKETS):
        """Rows `{start, end, count, mean}` of positions in `[start, end)`."""
        rows = []
        for start, end in buckets:
            if start >= len(self.position_counts):
                break
            count = int(self.position_counts[start:end].sum())
            total = float(self.position_sums[start:end].sum())
            rows.append(
                {"start": start, "end": end, "count": count, "mean": total / count if count else None}
            )
        return rows

    def to_dict(self):
        """Every statistic as a JSON-serialisable dict."""
        means = self.means()
        length = self.max_updates + 1
        return {
            "num_examples": self.num_examples,
            "max_layers": self.max_layers,
            "categories": [
                {
                    "name": name,
                    "title": CATEGORY_TITLES[name],
                    "count": self.counts[name],
                    "mean_updates": None if self.counts[name] == 0 else means[name],
                    "histogram": [int(c) for c in self.histogram(name, length)],
                }
                for name in DEPTH_CATEGORIES
            ],
            "frequency_bands": self.frequency_bands(),
            "positions": {
                "mean_updates": self.position_means(),
                "count": [int(c) for c in self.position_counts],
                "buckets": self.position_buckets(),
            },
        }


def original_token_ids(token_ids, features, targets):
    """`token_ids` with each masked-LM target put back to its original id."""
    originals = np.array(token_ids, np.int32, copy=True)
    positions = np.asarray(features["mask_positions"], np.int64)
    ids = np.asarray(targets["mask_ids"], np.int32)
    used = np.asarray(targets["mask_weights"]) > 0
    rows = np.broadcast_to(np.arange(originals.shape[0])[:, None], positions.shape)
    originals[rows[used], positions[used]] = ids[used]
    return originals


def _add(accumulated, values):
    """Elementwise sum of two 1-D arrays of possibly different lengths."""
    length = max(len(accumulated), len(values))
    result = np.pad(accumulated, (0, length - len(accumulated))).astype(
        np.result_type(accumulated, values)
    )
    result[: len(values)] += values
    return result
