"""Corpora, SOP pairs and dynamic MLM masking (`keras_act.data`)."""

import numpy as np
import pytest
import tensorflow as tf

from keras_act.data.masking import mask_example
from keras_act.data.pretraining_dataset import pretraining_dataset
from keras_act.data.sentence_order import create_sop_instances
from keras_act.data.text_corpus import read_documents, split_sentences
from training.demo_corpus import generate_demo_documents, write_demo_corpus

VOCAB = 120


def fake_documents(num_documents=40, seed=0):
    """Tokenized documents of random ids in [5, VOCAB)."""
    rng = np.random.default_rng(seed)
    return [
        [rng.integers(5, VOCAB, size=rng.integers(3, 12)).astype(np.int32) for _ in range(rng.integers(2, 7))]
        for _ in range(num_documents)
    ]


def test_split_sentences_keeps_abbreviations_and_initials():
    assert split_sentences("Mr. Brown came. He sat! Why? J. S. Bach wrote it.") == [
        "Mr. Brown came.",
        "He sat!",
        "Why?",
        "J. S. Bach wrote it.",
    ]
    assert split_sentences("   ") == []


def test_blank_line_blocks_are_documents(tmp_path):
    path = tmp_path / "blocks.txt"
    path.write_text("One. Two.\nThree.\n\nFour.\n\n\nFive. Six.\n")
    assert read_documents([str(path)]) == [["One.", "Two.", "Three."], ["Four."], ["Five.", "Six."]]


def test_file_without_blank_lines_is_one_sentence_per_line_document(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("first line\nsecond line\nthird line\n")
    assert read_documents([str(path)]) == [["first line", "second line", "third line"]]


def test_wikitext_markup_is_cleaned(tmp_path):
    path = tmp_path / "wiki.tokens"
    path.write_text(
        " = Alpha = \n\n A well @-@ known <unk> thing . It is 1 @,@ 000 km .\n\n"
        " = = Section = = \n\n More text here .\n\n = Beta = \n\n Other article .\n"
    )
    documents = read_documents([str(path)])
    assert documents == [
        ["A well-known thing .", "It is 1,000 km .", "More text here ."],
        ["Other article ."],
    ]


def test_real_wikitext_corpus(shared_dir):
    documents = read_documents([str(shared_dir / "data" / "corpus" / "wikitext2_wiki.valid.tokens")])
    assert len(documents) >= 55  # ~60 articles
    sentences = [s for d in documents for s in d]
    assert len(sentences) > 5000
    assert not any("<unk>" in s or "@-@" in s for s in sentences)


@pytest.mark.parametrize("content", ["", "\n\n   \n", "\t\n"])
def test_empty_corpus_is_a_clear_error(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_text(content)
    with pytest.raises(ValueError, match="no usable document"):
        read_documents([str(path)])
    with pytest.raises(ValueError, match="no file"):
        read_documents([])
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_documents([str(tmp_path / "missing.txt")])


def test_demo_corpus_is_deterministic(tmp_path):
    assert generate_demo_documents(5, seed=3) == generate_demo_documents(5, seed=3)
    assert generate_demo_documents(5, seed=3) != generate_demo_documents(5, seed=4)
    path = write_demo_corpus(str(tmp_path / "demo.txt"), num_documents=7)
    assert len(read_documents([path])) == 7


def test_sop_instances_follow_albert():
    documents = fake_documents()
    tokens_a, tokens_b, labels = create_sop_instances(documents, sequence_length=24, seed=0)
    assert len(tokens_a) == len(tokens_b) == len(labels) > 40
    assert set(np.unique(labels)) == {0, 1}
    assert 0.3 < labels.mean() < 0.7
    for a, b in zip(tokens_a, tokens_b, strict=True):
        assert len(a) >= 1 and len(b) >= 1 and len(a) + len(b) <= 21
    # Unswapped pairs are consecutive text of one document.
    text = np.concatenate([np.concatenate(d) for d in documents])
    joined = text.tobytes()
    for a, b, label in zip(tokens_a[:30], tokens_b[:30], labels[:30], strict=True):
        first, second = (a, b) if label == 0 else (b, a)
        assert np.concatenate([first, second]).tobytes() in joined or len(first) + len(second) == 21


def test_sop_instances_are_deterministic():
    a = create_sop_instances(fake_documents(), 32, seed=5)
    b = create_sop_instances(fake_documents(), 32, seed=5)
    c = create_sop_instances(fake_documents(), 32, seed=6)
    assert all(np.array_equal(x, y) for x, y in zip(a[0], b[0], strict=True))
    assert not np.array_equal(a[2], c[2]) or len(a[2]) != len(c[2])


def test_no_pair_is_a_clear_error():
    with pytest.raises(ValueError, match="no sentence pair"):
        create_sop_instances([[np.array([7], np.int32)]], 16, seed=0)


def masked_examples(count=400, max_ngram=1, sequence_length=64, max_predictions=10, shuffle=True):
    instances = create_sop_instances(fake_documents(200), sequence_length, seed=0)
    dataset = pretraining_dataset(
        instances, sequence_length, max_predictions, VOCAB, seed=1, max_ngram=max_ngram, shuffle=shuffle
    )
    return [
        (tf.nest.map_structure(np.asarray, x), tf.nest.map_structure(np.asarray, y))
        for x, y in dataset.take(count)
    ], instances


def test_masking_statistics_follow_80_10_10():
    examples, _ = masked_examples()
    kinds = {"mask": 0, "original": 0, "random": 0}
    for features, targets in examples:
        used = targets["mask_weights"] > 0
        positions = features["mask_positions"][used]
        shown = features["token_ids"][positions]
        originals = targets["mask_ids"][used]
        # Never a special token, never padding, no position twice.
        assert np.all(originals >= 5)
        assert np.all(features["padding_mask"][positions] == 1)
        assert len(set(positions.tolist())) == len(positions)
        # 15% of the tokens (at most max_predictions).
        length = features["padding_mask"].sum()
        assert used.sum() == min(10, max(1, round(length * 0.15)))
        kinds["mask"] += int(np.sum(shown == 4))
        kinds["original"] += int(np.sum(shown == originals))
        kinds["random"] += int(np.sum((shown != 4) & (shown != originals)))
    total = sum(kinds.values())
    assert abs(kinds["mask"] / total - 0.8) < 0.03
    assert abs(kinds["original"] / total - 0.1) < 0.03
    assert abs(kinds["random"] / total - 0.1) < 0.03


def test_packing_and_static_shapes():
    examples, instances = masked_examples(count=5, shuffle=False)
    for (features, targets), a, b, sop_label in zip(examples, *instances, strict=False):
        assert targets["sop_label"] == sop_label
        assert features["token_ids"].shape == (64,)
        assert features["mask_positions"].shape == targets["mask_ids"].shape == (10,)
        length = len(a) + len(b) + 3
        assert features["padding_mask"].sum() == length
        assert features["segment_ids"][: len(a) + 2].sum() == 0
        assert features["segment_ids"][len(a) + 2 : length].min() == 1
        assert features["segment_ids"][length:].max(initial=0) == 0
        tokens = features["token_ids"].copy()
        tokens[features["mask_positions"]] = np.where(
            targets["mask_weights"] > 0, targets["mask_ids"], tokens[features["mask_positions"]]
        )
        np.testing.assert_array_equal(tokens[:length], np.concatenate([[2], a, [3], b, [3]]))


def test_masks_change_per_epoch_but_are_deterministic():
    instances = create_sop_instances(fake_documents(10), 32, seed=0)
    n = len(instances[2])

    def positions(seed):
        dataset = pretraining_dataset(instances, 32, 5, VOCAB, seed=seed)
        return [x["mask_positions"].numpy().tolist() for x, _ in dataset.take(2 * n)]

    first = positions(0)
    assert first == positions(0)
    assert first != positions(1)
    # Epoch 2 masks the same instances differently.
    dataset = pretraining_dataset(instances, 32, 5, VOCAB, seed=0, shuffle=False)
    pairs = [x for x, _ in dataset.take(2 * n)]
    differs = [
        not np.array_equal(pairs[i]["mask_positions"], pairs[i + n]["mask_positions"])
        for i in range(n)
    ]
    assert np.mean(differs) > 0.5


def test_ngram_masking_masks_spans():
    examples, _ = masked_examples(count=200, max_ngram=3)
    adjacent = 0
    for features, targets in examples:
        positions = features["mask_positions"][targets["mask_weights"] > 0]
        adjacent += int(np.sum(np.diff(np.sort(positions)) == 1))
        assert len(set(positions.tolist())) == len(positions)
    single, _ = masked_examples(count=200, max_ngram=1)
    adjacent_single = sum(
        int(np.sum(np.diff(np.sort(f["mask_positions"][t["mask_weights"] > 0])) == 1))
        for f, t in single
    )
    assert adjacent > 2 * adjacent_single


def test_mask_example_never_selects_special_tokens():
    tokens = tf.constant([2, 10, 11, 3, 12, 3, 0, 0], tf.int32)
    masked, positions, ids, weights = mask_example(
        tokens, tf.constant([1, 2]), VOCAB, 4, 4, (2, 3, 0), 5, mask_probability=0.5
    )
    used = weights.numpy() > 0
    assert set(positions.numpy()[used]).issubset({1, 2, 4})
    assert used.sum() == 3  # round(0.5 * 6 real tokens) = 3
