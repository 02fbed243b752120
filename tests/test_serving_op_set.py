"""Every export uses only ops that model servers built with TF Text 2.12.1 have.

TF Serving links TF Text into its binary; for years its images shipped TF Text
2.12.1, which lacks e.g. `TFText>RoundRobinTrim` (TF Text 2.16), and refuses a
model that uses it ("Op type not registered"). Each serving head is exported
(single texts and pairs where the head takes them), its `saved_model.pb` read
back, and the ops that are not TensorFlow core ops (`tf.raw_ops`) compared with
the ops of the tensorflow-text 2.12.1 wheel (`tests/fixtures/tf_text_2_12_1_ops.txt`,
with the command that made it).
"""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow.core.protobuf import saved_model_pb2

import keras_act
from keras_act.export import export_saved_model
from keras_act.tokenizers.albert_act_preprocessor import pack_segments
from tests.helpers import tiny_backbone, train_tiny_sentencepiece

FIXTURE = Path(__file__).parent / "fixtures" / "tf_text_2_12_1_ops.txt"
SEQUENCE_LENGTH = 16


def tf_text_2_12_1_ops():
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    return {line for line in lines if line and not line.startswith("#")}


def saved_model_ops(version_dir):
    """Every op type of a SavedModel's graph and its function library."""
    saved_model = saved_model_pb2.SavedModel.FromString(
        (Path(version_dir) / "saved_model.pb").read_bytes()
    )
    ops = set()
    for meta_graph in saved_model.meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops


def non_core_ops(ops):
    return sorted(op for op in ops if not hasattr(tf.raw_ops, op))


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    vocab = train_tiny_sentencepiece(tmp_path_factory.mktemp("vocab") / "tiny.model")
    return keras_act.AlbertActTokenizer(proto=vocab)


def _exports(tokenizer):
    """`(name, model, preprocessor, pair)`: every serving head, every packer.

    The non-core ops come from the preprocessing, so each preprocessor is
    exported once (pairs through the pair signatures); the regressor and a
    single-text classifier share the classifier's packer and add only core ops.
    """
    size = tokenizer.vocabulary_size()
    backbone = tiny_backbone(size, seed=3, max_layers=2)
    single = keras_act.AlbertActPreprocessor(tokenizer, sequence_length=SEQUENCE_LENGTH)
    pair = keras_act.AlbertActPairPreprocessor(tokenizer, sequence_length=SEQUENCE_LENGTH)
    classifier_inputs = keras_act.AlbertActTextClassifierPreprocessor(
        tokenizer, sequence_length=SEQUENCE_LENGTH
    )
    token_inputs = keras_act.AlbertActTokenClassifierPreprocessor(
        tokenizer, sequence_length=SEQUENCE_LENGTH
    )
    qa_inputs = keras_act.AlbertActQuestionAnswererPreprocessor(
        tokenizer, sequence_length=SEQUENCE_LENGTH, max_question_length=4
    )
    choice_inputs = keras_act.AlbertActMultipleChoicePreprocessor(
        tokenizer, sequence_length=SEQUENCE_LENGTH
    )
    classifier = keras_act.AlbertActTextClassifier(backbone, 3, preprocessor=classifier_inputs)
    return [
        ("backbone", backbone, single, None),
        ("backbone_pair", backbone, pair, None),
        ("masked_lm", keras_act.AlbertActPretrainer(backbone), single, None),
        ("classifier_pair", classifier, None, True),
        (
            "token_classifier",
            keras_act.AlbertActTokenClassifier(backbone, 3, preprocessor=token_inputs),
            None,
            None,
        ),
        (
            "question_answerer",
            keras_act.AlbertActQuestionAnswerer(backbone, preprocessor=qa_inputs),
            None,
            None,
        ),
        (
            "multiple_choice",
            keras_act.AlbertActMultipleChoice(backbone, preprocessor=choice_inputs),
            None,
            None,
        ),
    ]


@pytest.mark.large
def test_every_export_uses_only_ops_of_tf_text_2_12_1(tokenizer, tmp_path):
    allowed = tf_text_2_12_1_ops()
    assert "TFText>FastSentencepieceTokenize" in allowed
    assert "TFText>RoundRobinTrim" not in allowed  # TF Text 2.16
    seen = {}
    for name, model, preprocessor, pair in _exports(tokenizer):
        path = export_saved_model(model, preprocessor, tmp_path / name, pair=pair, verify=False)
        seen[name] = non_core_ops(saved_model_ops(path))
    missing = {name: sorted(set(ops) - allowed) for name, ops in seen.items()}
    assert all(not ops for ops in missing.values()), missing
    # The check sees the tokenizer's op in every export.
    assert all("TFText>FastSentencepieceTokenize" in ops for ops in seen.values()), seen


def test_the_fixture_holds_op_names_only():
    ops = tf_text_2_12_1_ops()
    assert len(ops) == 35
    assert all(not hasattr(tf.raw_ops, op) for op in ops)  # none is a core op


def test_pair_packing_uses_no_tf_text_op(tokenizer):
    """The packer is plain TensorFlow: its graph holds no op outside `tf.raw_ops`
    (the old one used `TFText>RoundRobinTrim`)."""
    spec = tf.RaggedTensorSpec([None, None], tf.int32, ragged_rank=1, row_splits_dtype=tf.int64)
    function = tf.function(lambda a, b: pack_segments((a, b), 8, tokenizer))
    graph = function.get_concrete_function(spec, spec).graph.as_graph_def()
    ops = {node.op for node in graph.node}
    for library_function in graph.library.function:
        ops.update(node.op for node in library_function.node_def)
    assert non_core_ops(ops) == []


# === The trimming: Hugging Face's `longest_first` and the old trimmer ===


def _ragged(lengths, start):
    return tf.ragged.constant(
        [list(range(start, start + n)) for n in lengths], dtype=tf.int32, row_splits_dtype=tf.int64
    )


def test_pair_trimming_matches_hugging_face_longest_first(spiece):
    """Every pair of lengths 0..14 at room 0..12, against Hugging Face's own
    `truncate_sequences(..., truncation_strategy="longest_first")`."""
    from tests.helpers import hf_albert_tokenizer

    hf = hf_albert_tokenizer(spiece)
    firsts, seconds, rooms = [], [], []
    for la in range(15):
        for lb in range(15):
            for room in range(13):
                firsts.append(la)
                seconds.append(lb)
                rooms.append(room)
    from keras_act.tokenizers.albert_act_preprocessor import trim_segments

    for room in range(13):
        index = [i for i, r in enumerate(rooms) if r == room]
        a = _ragged([firsts[i] for i in index], 100)
        b = _ragged([seconds[i] for i in index], 500)
        got_a, got_b = (t.to_list() for t in trim_segments((a, b), room))
        for row, i in enumerate(index):
            ids, pair_ids = list(range(100, 100 + firsts[i])), list(range(500, 500 + seconds[i]))
            remove = max(0, len(ids) + len(pair_ids) - room)
            want_a, want_b, _ = hf.truncate_sequences(
                ids, pair_ids, num_tokens_to_remove=remove, truncation_strategy="longest_first"
            )
            assert (got_a[row], got_b[row]) == (want_a, want_b), (firsts[i], seconds[i], room)


@pytest.mark.parametrize("count", [1, 2, 3])
def test_trimming_matches_tf_text_round_robin_trimmer(count):
    """The old `tf_text.RoundRobinTrimmer` (still in the installed TF Text) on
    random lengths of one, two and three segments."""
    from keras_act.tokenizers.albert_act_preprocessor import trim_segments

    rng = np.random.default_rng(count)
    for room in (0, 1, 2, 5, 8, 13):
        lengths = rng.integers(0, 12, size=(64, count))
        segments = tuple(_ragged(lengths[:, k], 1000 * k) for k in range(count))
        got = [t.to_list() for t in trim_segments(segments, room)]
        want = [t.to_list() for t in tf_text.RoundRobinTrimmer(room).trim(segments)]
        assert got == want, room


def test_packed_pairs_match_hugging_face(spiece):
    """Whole pairs of texts of many lengths, packed in-graph and by Hugging Face."""
    from tests.helpers import hf_albert_tokenizer

    hf = hf_albert_tokenizer(spiece)
    tokenizer = keras_act.AlbertActTokenizer(proto=str(spiece))
    words = "the quick brown fox jumps over the lazy dog near a river bank".split()
    texts = [" ".join(words[:n]) for n in range(len(words) + 1)]
    firsts = [a for a in texts for _ in texts]
    seconds = [b for _ in texts for b in texts]
    for length in (3, 5, 8, 13):
        pair = keras_act.AlbertActPairPreprocessor(tokenizer, sequence_length=length)
        got = pair((tf.constant(firsts), tf.constant(seconds)))["token_ids"].numpy().tolist()
        want = hf(
            firsts, seconds, truncation="longest_first", max_length=length, padding="max_length"
        )["input_ids"]
        assert got == want, length
