"""Per-token depth and corpus statistics of a small fixed model (Keras and SavedModel)."""

import os

import numpy as np
import pytest

from keras_act.analysis import (
    KerasDepthReader,
    SavedModelDepthReader,
    corpus_depth_statistics,
    format_depth_table,
    load_depth_reader,
    masked_examples,
    sentence_depths,
)
from keras_act.data.text_corpus import read_documents
from keras_act.depth_categories import DEPTH_CATEGORIES
from tests.helpers import ANALYSIS_MAX_LAYERS as MAX_LAYERS
from tests.helpers import ANALYSIS_SEQUENCE_LENGTH as SEQUENCE_LENGTH
from tests.helpers import ANALYSIS_TEXTS as TEXTS
from tests.helpers import analysis_setup, backbone_outputs


@pytest.fixture(scope="module")
def setup():
    return analysis_setup()


@pytest.fixture(scope="module")
def documents(setup):
    return read_documents([setup.corpus])[:12]


def test_sentence_table_is_the_models_own_output(setup):
    depths = sentence_depths(setup.backbone, TEXTS, tokenizer=setup.tokenizer)
    features, outputs = backbone_outputs(setup.backbone, setup.tokenizer, TEXTS)
    assert [d.text for d in depths] == TEXTS
    all_updates = []
    for row, depth in enumerate(depths):
        real = features["padding_mask"][row] > 0
        ids = features["token_ids"][row][real]
        np.testing.assert_array_equal(depth.token_ids, ids)
        assert depth.pieces == [
            p.decode() for p in setup.tokenizer.id_to_piece(ids).numpy().tolist()
        ]
        assert depth.pieces[0] == "[CLS]" and depth.pieces[-1] == "[SEP]"
        np.testing.assert_array_equal(depth.updates, outputs["updates"][row][real])
        np.testing.assert_allclose(depth.remainders, outputs["remainders"][row][real], atol=1e-6)
        all_updates.extend(depth.updates.tolist())
    assert "[MASK]" in depths[1].pieces
    # The fixed model gives varied depths, some at the cap: the comparison
    # above is not between constants.
    assert len(set(all_updates)) >= 3 and MAX_LAYERS in all_updates


def test_halting_probabilities_follow_the_act_rule(setup):
    threshold = 1.0 - setup.backbone.act_epsilon
    depths = sentence_depths(setup.backbone, TEXTS, tokenizer=setup.tokenizer)
    for depth in depths:
        steps = depth.step_halting_probabilities
        assert steps.shape[0] == len(depth)
        for i in range(len(depth)):
            p = steps[i][~np.isnan(steps[i])]
            # One halting-unit output per update.
            assert len(p) == depth.updates[i]
            before_last = float(np.sum(p[:-1]))
            assert before_last <= threshold + 1e-6
            if before_last + p[-1] > threshold:
                # Halted: the last update used the remainder, cumulative 1.
                assert depth.remainders[i] == pytest.approx(1.0 - before_last, abs=1e-5)
                assert depth.halting_probability[i] == pytest.approx(1.0, abs=1e-6)
            else:
                # Stopped by the cap, below the threshold.
                assert depth.updates[i] == MAX_LAYERS
                assert depth.halting_probability[i] == pytest.approx(before_last + p[-1], abs=1e-5)


def test_format_depth_table(setup):
    depth = sentence_depths(setup.backbone, [TEXTS[2]], tokenizer=setup.tokenizer)[0]
    table = format_depth_table(depth, max_layers=MAX_LAYERS)
    lines = table.splitlines()
    assert TEXTS[2] in lines[0] and "cap 6" in lines[0]
    body = lines[2 : 2 + len(depth)]
    for i, (line, piece) in enumerate(zip(body, depth.pieces, strict=True)):
        fields = line.split()
        assert fields[:4] == [str(i), piece, str(int(depth.token_ids[i])), f"{depth.updates[i]:g}"]
        assert "#" * int(depth.updates[i]) in line
    assert lines[-1].startswith(f"mean updates {np.mean(depth.updates):.2f}")


def test_corpus_statistics_match_the_training_loop(setup, documents):
    """Means per category equal those of `AlbertActPretrainer.depth_statistics`
    (the pre-training loop's) on the same masked examples."""
    import keras_act

    statistics = corpus_depth_statistics(
        setup.backbone, documents, tokenizer=setup.tokenizer, sequence_length=SEQUENCE_LENGTH,
        batch_size=8,
    )
    depth_reader = KerasDepthReader(setup.backbone, setup.tokenizer)
    dataset, frequencies = masked_examples(depth_reader, documents, sequence_length=SEQUENCE_LENGTH)
    pretrainer = keras_act.AlbertActPretrainer(setup.backbone)
    sums = dict.fromkeys(DEPTH_CATEGORIES, 0.0)
    counts = dict.fromkeys(DEPTH_CATEGORIES, 0.0)
    examples = mask_weights = 0
    for features, targets in dataset.batch(5).as_numpy_iterator():
        outputs = pretrainer(features, training=False)
        for name, (total, count) in pretrainer.depth_statistics(features, targets, outputs).items():
            sums[name] += float(total)
            counts[name] += float(count)
        examples += len(features["token_ids"])
        mask_weights += targets["mask_weights"].sum()
    means = statistics.means()
    for name in DEPTH_CATEGORIES:
        assert statistics.counts[name] == counts[name], name
        assert means[name] == pytest.approx(sums[name] / counts[name], rel=1e-6), name
    assert statistics.num_examples == examples > 10
    assert statistics.counts["cls"] == examples and statistics.counts["sep"] == 2 * examples
    masked = sum(statistics.counts[n] for n in ("mask_mask", "mask_random", "mask_original"))
    assert masked == mask_weights
    # 15% of the tokens are targets, 80% of them shown as [MASK].
    assert 0.10 < masked / statistics.counts["all"] < 0.2
    assert statistics.counts["mask_mask"] > 0.6 * masked
    tokens = sum(len(s) for d in depth_reader_tokenized(depth_reader, documents) for s in d)
    assert frequencies.sum() == tokens
    assert sum(r["unmasked_count"] for r in statistics.frequency_bands()) == statistics.counts["unmasked"]
    assert sum(statistics.position_counts) == statistics.counts["all"]


def depth_reader_tokenized(depth_reader, documents):
    return [depth_reader.tokenize(document) for document in documents]


def test_saved_model_gives_the_same_depth(setup, documents):
    depth_reader = load_depth_reader(setup.saved_models)  # the base folder: its latest version
    assert isinstance(depth_reader, SavedModelDepthReader)
    assert depth_reader.path == setup.version_dir
    assert (depth_reader.cls_token_id, depth_reader.sep_token_id, depth_reader.mask_token_id) == (2, 3, 4)
    assert depth_reader.vocabulary_size == setup.backbone.vocabulary_size
    assert depth_reader.max_sequence_length == setup.backbone.max_sequence_length

    served = sentence_depths(depth_reader, TEXTS)
    local = sentence_depths(setup.backbone, TEXTS, tokenizer=setup.tokenizer)
    for a, b in zip(served, local, strict=True):
        assert a.pieces == b.pieces
        np.testing.assert_array_equal(a.token_ids, b.token_ids)
        np.testing.assert_array_equal(a.updates, b.updates)
        assert a.remainders is None and a.halting_probability is None
    assert "halting p" in format_depth_table(served[0])

    kwargs = dict(sequence_length=SEQUENCE_LENGTH, seed=3, max_examples=24)
    from_saved_model = corpus_depth_statistics(depth_reader, documents, **kwargs).to_dict()
    from_keras = corpus_depth_statistics(
        setup.backbone, documents, tokenizer=setup.tokenizer, **kwargs
    ).to_dict()
    assert from_saved_model["num_examples"] == from_keras["num_examples"] == 24
    # The export stores the cap: histograms as wide as the Keras model's.
    assert depth_reader.max_layers == from_saved_model["max_layers"] == MAX_LAYERS
    assert from_saved_model == from_keras


def test_saved_model_of_a_short_export_length_does_not_truncate(setup, documents, tmp_path):
    """An export of length 8 (sentences of up to 6 pieces) still gives every
    piece of longer sentences, and the same corpus table as the Keras model."""
    from keras_act.export import export_saved_model

    version_dir = export_saved_model(
        setup.backbone, setup.tokenizer, str(tmp_path / "short"), sequence_length=8, verify=False
    )
    depth_reader = load_depth_reader(version_dir)
    assert depth_reader.sequence_length == 8 and depth_reader.max_layers == MAX_LAYERS
    sentences = [s for document in documents for s in document]
    local = [np.asarray(ids) for ids in setup.tokenizer(sentences).to_list()]
    assert max(len(ids) for ids in local) > 20  # most are cut by a length-8 export
    served = depth_reader.tokenize(sentences)
    for sentence, a, b in zip(sentences, served, local, strict=True):
        np.testing.assert_array_equal(a, b, err_msg=sentence)
    # Words of exactly 6 pieces fill the export: counted, as they might be cut.
    filling = sum(
        any(len(ids) == 6 for ids in setup.tokenizer(sentence.split()).to_list())
        for sentence in sentences
    )
    assert depth_reader.truncated_sentences == filling

    kwargs = dict(sequence_length=SEQUENCE_LENGTH, seed=5, max_examples=24)
    depth_reader.truncated_sentences = 0
    from_saved_model = corpus_depth_statistics(depth_reader, documents, **kwargs).to_dict()
    from_keras = corpus_depth_statistics(
        setup.backbone, documents, tokenizer=setup.tokenizer, **kwargs
    ).to_dict()
    assert from_saved_model == from_keras

    text = " ".join(sentences[:3])  # longer than 8 pieces: run through serve_token_ids
    (a,), (b,) = sentence_depths(depth_reader, [text]), sentence_depths(setup.backbone, [text], tokenizer=setup.tokenizer)
    assert a.pieces == b.pieces and len(a.pieces) > 8
    np.testing.assert_array_equal(a.updates, b.updates)

    # A single word of more than 6 pieces cannot be split: it is cut, and counted.
    depth_reader.truncated_sentences = filling
    word = "zyxwvutsrqponmlkjihgfedcba"
    assert len(setup.tokenizer([word]).to_list()[0]) > 6
    assert len(depth_reader.tokenize([f"the {word} ran"])[0]) < len(setup.tokenizer([f"the {word} ran"]).to_list()[0])
    assert depth_reader.truncated_sentences == filling + 1


def test_load_depth_reader_from_every_format(setup, tmp_path, reference_dir):
    import keras_act

    expected = sentence_depths(setup.backbone, TEXTS, tokenizer=setup.tokenizer)

    def check(depth_reader):
        assert isinstance(depth_reader, KerasDepthReader)
        for a, b in zip(sentence_depths(depth_reader, TEXTS), expected, strict=True):
            np.testing.assert_array_equal(a.updates, b.updates)

    check(load_depth_reader(setup.preset))
    path = str(tmp_path / "pretrainer.keras")
    keras_act.AlbertActPretrainer(setup.backbone).save(path)
    check(load_depth_reader(path, vocab=setup.vocab))
    check(load_depth_reader(path, vocab=setup.preset))

    # An authors' checkpoint (vocabulary 300) with our 100-piece vocabulary.
    checkpoint = reference_dir / "tiny_random"
    depth_reader = load_depth_reader(str(checkpoint), vocab=setup.vocab)
    reference = keras_act.convert.load_hf_checkpoint(str(checkpoint))
    features, outputs = backbone_outputs(reference, setup.tokenizer, TEXTS)
    for row, depth in enumerate(sentence_depths(depth_reader, TEXTS)):
        real = features["padding_mask"][row] > 0
        np.testing.assert_array_equal(depth.updates, outputs["updates"][row][real])
    with pytest.raises(ValueError, match="--vocab"):
        load_depth_reader(str(checkpoint))
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_depth_reader(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="tokenizer"):
        load_depth_reader(path)
    assert os.path.isdir(setup.version_dir)
