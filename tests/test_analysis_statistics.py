"""`DepthStatistics` and its tables on hand-built batches with known masks."""

import json

import numpy as np
import pytest

from keras_act.analysis import DepthStatistics, statistics_json, statistics_markdown
from keras_act.analysis.report import PAPER_MEAN_UPDATES, category_table_markdown
from keras_act.analysis.statistics import frequency_band_names, original_token_ids
from tests.helpers import FEATURES, PADDING_MASK, TARGETS, TOKEN_IDS, UPDATES, hand_built_statistics


def test_categories_of_a_hand_built_batch():
    statistics = hand_built_statistics()
    # all: every real token; unmasked: 10, 12 (row 0) and 30, 31 (row 1);
    # the unused target slot (row 1, slot 1) stays unmasked.
    expected = {
        "all": ([6, 1, 5, 2, 3, 4, 2, 5, 3, 1, 2, 6, 4], 13),
        "unmasked": ([1, 2, 3, 1], 4),
        "mask_mask": ([5], 1),
        "mask_random": ([6], 1),
        "mask_original": ([4], 1),
        "cls": ([6, 5], 2),
        "sep": ([3, 2, 2, 4], 4),
    }
    means = statistics.means()
    for name, (values, count) in expected.items():
        assert statistics.counts[name] == count, name
        assert statistics.sums[name] == pytest.approx(sum(values)), name
        assert means[name] == pytest.approx(np.mean(values)), name
        np.testing.assert_array_equal(
            statistics.histogram(name, 7), np.bincount(values, minlength=7), err_msg=name
        )
    assert statistics.num_examples == 2
    assert statistics.max_updates == 6


def test_batches_accumulate_and_empty_categories_are_nan():
    statistics = hand_built_statistics()
    statistics.update(FEATURES, TARGETS, UPDATES)
    assert statistics.counts["all"] == 26
    assert statistics.means()["mask_mask"] == pytest.approx(5.0)
    assert statistics.num_examples == 4

    unmasked_only = DepthStatistics()
    unmasked_only.update({"token_ids": TOKEN_IDS, "padding_mask": PADDING_MASK}, None, UPDATES)
    means = unmasked_only.means()
    assert np.isnan(means["mask_mask"]) and unmasked_only.counts["mask_mask"] == 0
    # Without targets, row 0's [MASK] is an ordinary token.
    assert unmasked_only.counts["unmasked"] == 7
    assert unmasked_only.frequency_bands() == []


def test_original_ids_put_targets_back():
    originals = original_token_ids(TOKEN_IDS, FEATURES, TARGETS)
    np.testing.assert_array_equal(originals[0, :7], [2, 10, 11, 12, 3, 20, 3])
    # The unused slot (weight 0) does not overwrite token 30 at position 1.
    np.testing.assert_array_equal(originals[1, :6], [2, 30, 31, 3, 32, 3])


def test_frequency_bands():
    assert frequency_band_names((0, 1, 10, 100, 1000)) == ["0", "1-9", "10-99", "100-999", ">=1000"]
    statistics = hand_built_statistics()
    rows = {row["band"]: row for row in statistics.frequency_bands()}
    # Unmasked: 10 (freq 1, 1 update), 12 (50, 2), 30 (5000, 3), 31 (2, 1).
    assert rows["1-9"]["unmasked_count"] == 2 and rows["1-9"]["unmasked_mean"] == 1.0
    assert rows["10-99"]["unmasked_count"] == 1 and rows["10-99"]["unmasked_mean"] == 2.0
    assert rows[">=1000"]["unmasked_count"] == 1 and rows[">=1000"]["unmasked_mean"] == 3.0
    # Targets by their original: 11 (freq 5, 5 updates), 20 (500, 4), 32 (20, 6).
    assert rows["1-9"]["masked_count"] == 1 and rows["1-9"]["masked_mean"] == 5.0
    assert rows["10-99"]["masked_count"] == 1 and rows["10-99"]["masked_mean"] == 6.0
    assert rows["100-999"]["masked_count"] == 1 and rows["100-999"]["masked_mean"] == 4.0
    assert rows["0"]["unmasked_count"] == 0 and rows["0"]["unmasked_mean"] is None


def test_positions():
    statistics = hand_built_statistics()
    means = statistics.position_means()
    assert len(means) == 9
    assert means[0] == pytest.approx(5.5)  # the two [CLS]
    assert means[4] == pytest.approx((3 + 6) / 2)
    assert means[6] == pytest.approx(2.0)  # row 0 only
    assert means[7] is None and means[8] is None  # padding only
    buckets = statistics.position_buckets()
    assert buckets[0] == {"start": 0, "end": 1, "count": 2, "mean": pytest.approx(5.5)}
    assert buckets[1]["count"] == 11
    assert buckets[1]["mean"] == pytest.approx((1 + 5 + 2 + 3 + 4 + 2 + 3 + 1 + 2 + 6 + 4) / 11)


def test_max_layers_widens_histograms():
    statistics = hand_built_statistics(max_layers=12)
    assert statistics.max_updates == 12
    assert len(statistics.to_dict()["categories"][0]["histogram"]) == 13


def test_bad_input():
    with pytest.raises(ValueError, match="shape of `token_ids`"):
        DepthStatistics().update(FEATURES, TARGETS, UPDATES[:, :5])
    with pytest.raises(ValueError, match="frequency_edges"):
        DepthStatistics(frequency_edges=(0, 10, 10))


def test_markdown_and_json_tables():
    statistics = hand_built_statistics()
    markdown = statistics_markdown(statistics, paper="tiny")
    assert "| All tokens | 13 | 3.38 | 3.8 |" in markdown
    assert "| [MASK]/random | 1 | 6.00 | 5.8 |" in markdown
    assert "| [CLS] | 2 | 5.50 | 6.0 |" in markdown
    # Histogram shares: [CLS] has one token with 5 and one with 6 updates.
    assert "| [CLS] | 0.0 | 0.0 | 0.0 | 0.0 | 50.0 | 50.0 |" in markdown
    assert "| 100-999 | 0 | - | 1 | 4.00 |" in markdown
    assert "| 0 | 2 | 5.50 |" in markdown
    assert "Paper" not in statistics_markdown(statistics)
    with pytest.raises(ValueError, match="paper"):
        statistics_markdown(statistics, paper="huge")

    data = json.loads(statistics_json(statistics, paper="base", corpus="x.txt"))
    assert data["metadata"] == {"corpus": "x.txt"}
    assert data["paper_mean_updates"] == PAPER_MEAN_UPDATES["base"]
    rows = {row["name"]: row for row in data["categories"]}
    assert rows["mask_original"]["mean_updates"] == 4.0
    assert rows["sep"]["histogram"] == [0, 0, 2, 1, 1, 0, 0]
    assert data["positions"]["mean_updates"][7] is None

    empty = json.loads(statistics_json(DepthStatistics()))
    assert all(row["mean_updates"] is None for row in empty["categories"])
    assert "| [SEP] | 4 | 2.75 |" in category_table_markdown(statistics)
