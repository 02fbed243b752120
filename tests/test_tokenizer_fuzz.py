"""The in-graph tokenizer against Hugging Face on random strings (CI-sized).

`benchmarks/tokenizer_fuzz.py --count 100000` is the full run; here 3,000
strings of the same generator (scripts, emoji, digits, punctuation,
whitespace, control characters, runs of repeated letters), seeds recorded,
and strings built around a model's user-defined pieces, where
tensorflow-text's scores and the `sentencepiece` library's differed.
"""

import random

import pytest

from benchmarks.tokenizer_fuzz import compare, random_texts
from tests.helpers import describe_mismatches, hf_albert_tokenizer, synthetic_corpus


@pytest.mark.parametrize("seed", [0, 6])
def test_random_strings_match_hugging_face(tokenizer, hf, seed):
    texts = random_texts(1500, seed=seed)
    differences = compare(tokenizer, hf, texts)
    assert differences == [], [(texts[index], got, want) for index, got, want in differences[:5]]


def test_the_generator_mixes_what_it_says(tokenizer):
    texts = random_texts(1500, seed=0)
    joined = "".join(texts)
    for sample in ("中", "😀", "\u3000", "\x00", "٣", "hhh", "[MASK]", "é", "가", "–"):
        assert sample in joined, sample
    ids = tokenizer(texts).to_list()
    unknown = sum(tokenizer.unk_token_id in row for row in ids)
    assert unknown > len(texts) // 4  # many strings hold characters the vocabulary lacks


def user_defined_pieces(vocab_file):
    """The user-defined pieces of a SentencePiece model file."""
    from sentencepiece import sentencepiece_model_pb2

    model = sentencepiece_model_pb2.ModelProto()
    model.ParseFromString(vocab_file.read_bytes())
    return [p.piece for p in model.pieces if p.type == model.SentencePiece.USER_DEFINED]


def texts_around(pieces, count, seed):
    """Random strings of `pieces`, runs of repeated letters (equal-score
    segmentations), a few words, spaces, unknown characters and emoji."""
    rng = random.Random(seed)
    others = ["中", "😀", " ", "1,000", "the", "ka", "x"]
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 6)):
            kind = rng.random()
            if kind < 0.4:
                parts.append(rng.choice(pieces) * rng.randint(1, 2))
            elif kind < 0.85:
                parts.append(rng.choice("aehlostxz") * rng.randint(1, 7))
            else:
                parts.append(rng.choice(others))
        texts.append("".join(parts))
    return texts


def test_strings_around_albert_s_user_defined_pieces_match_hugging_face(spiece, tokenizer, hf):
    pieces = user_defined_pieces(spiece)
    assert sorted(pieces) == sorted('()"-.–£€')
    from keras_act.tokenizers.albert_act_tokenizer import user_defined_stand_ins

    assert user_defined_stand_ins(spiece.read_bytes()) == ()  # its normaliser keeps them all
    texts = texts_around(pieces, 1000, seed=0)
    got = tokenizer(texts).to_list()
    expected = [hf.encode(text, add_special_tokens=False) for text in texts]
    assert got == expected, describe_mismatches(texts, got, expected)


TRAINED_PIECES = ["–", "€", "ŋ", "→", "𝄞", "<<", "q", "ﬁ", "™", "①"]


@pytest.fixture(scope="module")
def trained_vocab(tmp_path_factory):
    """A small model with user-defined pieces of 1 to 4 bytes and of two
    characters; `"ﬁ"`, `"™"` and `"①"` are changed by its normaliser."""
    from training.vocab import train_vocabulary

    folder = tmp_path_factory.mktemp("user_defined")
    corpus = synthetic_corpus(folder / "corpus.txt")
    return train_vocabulary([corpus], 120, folder, user_defined_symbols=TRAINED_PIECES)


@pytest.fixture(scope="module")
def trained_tokenizers(trained_vocab):
    """`AlbertActTokenizer`s on `trained_vocab`, by `keep_accents`."""
    from keras_act import AlbertActTokenizer

    return {
        keep_accents: AlbertActTokenizer(proto=str(trained_vocab), keep_accents=keep_accents)
        for keep_accents in (False, True)
    }


@pytest.mark.parametrize("keep_accents", [False, True])
def test_strings_around_a_trained_model_s_user_defined_pieces_match_hugging_face(
    trained_vocab, trained_tokenizers, keep_accents
):
    """The rules are the library's for any model, on a small vocabulary (many
    ties). With `keep_accents`, `"ﬁ"` reaches the model and stays whole
    (tensorflow-text alone would normalise it to `"fi"`); `"\U0010fffd"`
    is the stand-in of a piece, typed in the text."""
    from keras_act.tokenizers.albert_act_tokenizer import user_defined_stand_ins

    assert sorted(user_defined_pieces(trained_vocab)) == sorted(TRAINED_PIECES)
    stand_ins = user_defined_stand_ins(trained_vocab.read_bytes())
    assert sorted(piece for piece, _, _ in stand_ins) == sorted(["ﬁ", "™", "①"])
    tokenizer = trained_tokenizers[keep_accents]
    hf = hf_albert_tokenizer(trained_vocab, keep_accents=keep_accents)
    texts = texts_around(TRAINED_PIECES, 1000, seed=1)
    texts += ["ﬁne", "ka ﬁ™ ka", "①\U0010fffd①", "\U0010fffd", "\U0010fffcﬁ中"]
    got = tokenizer(texts).to_list()
    expected = [hf.encode(text, add_special_tokens=False) for text in texts]
    assert got == expected, describe_mismatches(texts, got, expected)
    assert tokenizer.vocabulary_size() == 120
    if keep_accents:
        pieces, _ = tokenizer.tokenize_with_pieces("ﬁne")
        assert [p.decode() for p in pieces.numpy()] == ["▁", "ﬁ", "ne"]


def test_the_tokenizer_with_stand_ins_uses_only_ops_of_tf_text_2_12_1(trained_tokenizers):
    """The stand-ins add core ops only (model servers with TF Text 2.12.1)."""
    import tensorflow as tf

    from tests.test_serving_op_set import non_core_ops, tf_text_2_12_1_ops

    tokenizer = trained_tokenizers[True]
    graph = (
        tf.function(tokenizer.tokenize)
        .get_concrete_function(tf.TensorSpec([None], tf.string))
        .graph.as_graph_def()
    )
    ops = {node.op for node in graph.node}
    ops.update(node.op for function in graph.library.function for node in function.node_def)
    assert "StaticRegexReplace" in ops or "RegexReplace" in ops
    used = non_core_ops(ops)
    assert "TFText>FastSentencepieceTokenize" in used
    assert set(used) <= tf_text_2_12_1_ops(), used
