"""Tests of `AlbertActTokenizer` against the slow Hugging Face `AlbertTokenizer`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_act import AlbertActTokenizer
from keras_act.tokenizers.albert_act_tokenizer import SPECIAL_TOKENS
from tests.helpers import (
    HARD_CASES,
    LONG_TEXT,
    describe_mismatches,
    fuzz_texts,
    hf_albert_tokenizer,
    synthetic_corpus,
)


def reference_ids(hf, texts):
    return [hf.encode(text, add_special_tokens=False) for text in texts]


def run(tokenizer, texts, mode):
    """Token ids of `texts` as lists, eagerly, in a `tf.function` or in `tf.data`."""
    if mode == "eager":
        return tokenizer(texts).to_list()
    if mode == "tf_function":
        return tf.function(tokenizer.tokenize)(tf.constant(texts)).to_list()
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(128).map(tokenizer)
    return [row for batch in dataset for row in batch.to_list()]


# === Known values ===


def test_known_values(tokenizer):
    ids = tokenizer("Test sentence with [MASK].")
    assert ids.dtype == tf.int32
    assert ids.numpy().tolist() == [1289, 5123, 29, 4, 13, 9]
    pieces, ids = tokenizer.tokenize_with_pieces(
        "a lump in the middle of the monkeys stirred and then fell quiet ."
    )
    assert ids.numpy().tolist() == [
        21, 12667, 19, 14, 772, 16, 14, 19777, 15272, 17, 94, 1139, 2401, 13, 9,
    ]  # fmt: skip
    assert [p.decode() for p in pieces.numpy()] == [
        "▁a", "▁lump", "▁in", "▁the", "▁middle", "▁of", "▁the", "▁monkeys",
        "▁stirred", "▁and", "▁then", "▁fell", "▁quiet", "▁", ".",
    ]  # fmt: skip
    assert tokenizer(["I am still waiting on my card?"]).to_list() == [
        [31, 589, 174, 1672, 27, 51, 2056, 60]
    ]
    assert [tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id] == [2, 3, 0]
    assert [tokenizer.mask_token_id, tokenizer.unk_token_id] == [4, 1]
    assert tokenizer.vocabulary_size() == 30000


# === Identical to Hugging Face ===


@pytest.mark.parametrize("mode", ["eager", "tf_function", "tf_data"])
def test_glue_dev_sentences_match_hugging_face(tokenizer, hf, glue, mode):
    got = run(tokenizer, glue, mode)
    assert got == reference_ids(hf, glue), describe_mismatches(glue, got, reference_ids(hf, glue))


@pytest.mark.parametrize("mode", ["eager", "tf_function", "tf_data"])
def test_hard_cases_match_hugging_face(tokenizer, hf, mode):
    expected = reference_ids(hf, HARD_CASES)
    got = run(tokenizer, HARD_CASES, mode)
    assert got == expected, describe_mismatches(HARD_CASES, got, expected)
    assert len(got[HARD_CASES.index(LONG_TEXT)]) == 10_000  # far longer than any sequence


def test_random_strings_match_hugging_face(tokenizer, hf):
    texts = fuzz_texts()
    got = tokenizer(texts).to_list()
    expected = reference_ids(hf, texts)
    assert got == expected, describe_mismatches(texts, got, expected)


def test_one_string_gives_a_dense_vector(tokenizer, hf):
    for text in ["Crème brûlée with [MASK], 1,000,000 times.", ""]:
        ids = tokenizer(text)
        assert isinstance(ids, tf.Tensor) and ids.shape.rank == 1
        assert ids.numpy().tolist() == hf.encode(text, add_special_tokens=False)


@pytest.mark.parametrize(
    "options",
    [
        {"do_lower_case": False},
        {"keep_accents": True},
        {"remove_space": False},
        {"do_lower_case": False, "keep_accents": True, "remove_space": False},
    ],
)
def test_options_match_hugging_face(spiece, glue, options):
    tokenizer = AlbertActTokenizer(proto=str(spiece), **options)
    hf = hf_albert_tokenizer(spiece, **options)
    texts = HARD_CASES + glue[:300] + fuzz_texts(300, seed=1)
    got = tokenizer(texts).to_list()
    expected = reference_ids(hf, texts)
    assert got == expected, describe_mismatches(texts, got, expected)


def test_invalid_utf8_is_replaced_like_python(tokenizer, hf):
    raw = [
        b"caf\xe9",
        b"a\xffb",
        b"\xe2\x82",
        b"ok\xc3\xa9 \xc3",
        b"\xed\xa0\x80x",
        b"\xc0\xaf",
        b"\x80",
    ]
    got = tokenizer(tf.constant(raw)).to_list()
    expected = [
        hf.encode(b.decode("utf-8", errors="replace"), add_special_tokens=False) for b in raw
    ]
    assert got == expected


def test_pieces_match_hugging_face(tokenizer, hf, glue):
    texts = glue[:200] + HARD_CASES[:12]
    pieces, ids = tokenizer.tokenize_with_pieces(texts)
    got = [[p.decode() for p in row] for row in pieces.to_list()]
    assert got == [hf.convert_ids_to_tokens(row) for row in ids.to_list()]
    assert ids.to_list() == reference_ids(hf, texts)
    table = tokenizer.id_to_piece(tf.constant([[2, 3], [0, 1]]))
    assert table.numpy().tolist() == [[b"[CLS]", b"[SEP]"], [b"<pad>", b"<unk>"]]
    strings = AlbertActTokenizer(proto=tokenizer.proto, dtype="string")(texts[:20])
    assert strings.to_list() == pieces[:20].to_list()


def test_detokenize_matches_hugging_face_decode(tokenizer, hf, glue):
    texts = glue[:300] + HARD_CASES
    ids = tokenizer(texts)
    expected = [hf.decode(hf.encode(t), skip_special_tokens=True) for t in texts]
    assert [t.decode() for t in tokenizer.detokenize(ids).numpy()] == expected
    # Dense, padded `[batch, seq]` ids (a preprocessor's output) and one sequence.
    dense = ids[:5].to_tensor(default_value=tokenizer.pad_token_id)
    assert [t.decode() for t in tokenizer.detokenize(dense).numpy()] == expected[:5]
    assert (
        tokenizer.detokenize([2, 1289, 5123, 29, 4, 13, 9, 3, 0, 0]).numpy()
        == b"test sentence with ."
    )
    assert (
        tf.function(tokenizer.detokenize)(ids).numpy().tolist()
        == tokenizer.detokenize(ids).numpy().tolist()
    )


def test_digit_comma_pieces_are_split_as_hugging_face(tokenizer, hf):
    # "▁1," and "2010," are pieces of the vocabulary; Hugging Face re-splits them.
    assert tokenizer.token_to_id("▁1,") != tokenizer.unk_token_id
    text = "1, 2010, 3,5 and 1,000,000."
    assert tokenizer(text).numpy().tolist() == hf.encode(text, add_special_tokens=False)
    assert tokenizer("1,").numpy().tolist() == [137, 15]  # "▁1", ","


# === Shapes ===


def test_input_shapes(tokenizer):
    texts = [["a lump", "in the"], ["middle", ""]]
    flat = tokenizer([t for row in texts for t in row]).to_list()
    assert tokenizer(texts).to_list() == [flat[:2], flat[2:]]
    assert tokenizer(np.array(texts)).to_list() == [flat[:2], flat[2:]]
    ragged = tf.ragged.constant([["a lump"], ["in the", "middle", ""]])
    assert tokenizer(ragged).to_list() == [flat[:1], flat[1:]]
    assert tokenizer([]).shape.as_list() == [0, None]
    fixed = AlbertActTokenizer(proto=tokenizer.proto, sequence_length=3)
    assert fixed(["a lump in the middle", "a"]).numpy().tolist() == [[21, 12667, 19], [21, 0, 0]]


# === Saving ===


def test_config_and_assets_round_trip(tiny_spiece, tmp_path):
    tokenizer = AlbertActTokenizer(proto=str(tiny_spiece), keep_accents=True, name="tok")
    config = keras.saving.serialize_keras_object(tokenizer)
    assert config["registered_name"] == "keras_act>AlbertActTokenizer"
    assert config["config"]["keep_accents"] is True and config["config"]["proto"] is None
    restored = keras.saving.deserialize_keras_object(config)
    tokenizer.save_assets(str(tmp_path))
    restored.load_assets(str(tmp_path))
    assert isinstance(restored, AlbertActTokenizer) and restored.keep_accents
    texts = ["The naïve fox, 1,000 times.", "Über [MASK] Straße"]
    assert restored(texts).to_list() == tokenizer(texts).to_list()


def test_works_with_a_trained_vocabulary(tiny_spiece):
    hf = hf_albert_tokenizer(tiny_spiece)
    tokenizer = AlbertActTokenizer(proto=str(tiny_spiece))
    texts = HARD_CASES + fuzz_texts(300, seed=2)
    got = tokenizer(texts).to_list()
    expected = reference_ids(hf, texts)
    assert got == expected, describe_mismatches(texts, got, expected)


# === Bad input ===


def test_file_that_is_not_a_sentencepiece_model(tmp_path):
    path = tmp_path / "README.md"
    path.write_text("# not a model\n", encoding="utf-8")
    with pytest.raises(ValueError, match="README.md.*is not a SentencePiece model"):
        AlbertActTokenizer(proto=str(path))
    with pytest.raises(ValueError, match="`proto` bytes.*is not a SentencePiece model"):
        AlbertActTokenizer(proto=b"\x00\x01garbage")
    with pytest.raises(FileNotFoundError, match="missing.model"):
        AlbertActTokenizer(proto=str(tmp_path / "missing.model"))


def test_sentencepiece_model_without_albert_tokens(tmp_path):
    sentencepiece = pytest.importorskip("sentencepiece")
    corpus = synthetic_corpus(tmp_path / "corpus.txt")
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(tmp_path / "plain"), vocab_size=80, minloglevel=2
    )
    with pytest.raises(ValueError, match=r"plain.model.*without ALBERT's special tokens"):
        AlbertActTokenizer(proto=str(tmp_path / "plain.model"))


def test_non_string_input_and_bad_ids(tiny_spiece):
    tokenizer = AlbertActTokenizer(proto=str(tiny_spiece))
    with pytest.raises(ValueError, match="tokenizes strings"):
        tokenizer([1, 2])
    with pytest.raises(ValueError, match="tokenizes strings"):
        tokenizer(tf.constant([0.5]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"must lie in \[0, 120\)"):
        tokenizer.detokenize([[5, 120]])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"must lie in \[0, 120\)"):
        tokenizer.id_to_piece([-1])
    with pytest.raises(ValueError, match="must be integers"):
        tokenizer.detokenize([0.5])


def test_special_tokens_are_huggingface_s(hf):
    assert sorted(SPECIAL_TOKENS) == sorted(hf.all_special_tokens)


def test_equal_score_ties_after_unknown_characters_match_hugging_face(tokenizer, hf):
    """After a character unknown to the vocabulary, equal-score segmentations
    are ordered as the `sentencepiece` library orders them (tensorflow-text's
    own tokenizer scored one unknown piece per byte: `"h" "hh"`)."""
    texts = ["中hhh", "😀eee", "x中hhh", "中文hhh", "한hhh", "😀abc eee", "中\x01hhh"]
    got = tokenizer(texts).to_list()
    expected = reference_ids(hf, texts)
    assert got == expected, describe_mismatches(texts, got, expected)
    assert tokenizer("中hhh").numpy().tolist() == [13, 1, 10681, 252]  # "▁" <unk> "hh" "h"


def test_equal_score_ties_after_user_defined_pieces_match_hugging_face(tokenizer, hf):
    """After a user-defined piece of ALBERT's (`( ) " - . – £ €`), equal-score
    segmentations are ordered as the `sentencepiece` library orders them
    (tensorflow-text scored `"–"` 0, the library 0.2: `"h" "hh" "hh"`)."""
    texts = [
        "–hhhhh", "x–hhhhh", "a–b", "中–hhhhh", "😀–hhhhh", "–", "hh–hh", "€€€€hhh",
        "£hhhhh", "––xxlll", "(–hhhhh", "–tthhhhhh", "ss––hhhhh", "-–.–eee", "[MASK]–hhhhh",
    ]  # fmt: skip
    got = tokenizer(texts).to_list()
    expected = reference_ids(hf, texts)
    assert got == expected, describe_mismatches(texts, got, expected)
    pieces, _ = tokenizer.tokenize_with_pieces("–hhhhh")
    assert [p.decode() for p in pieces.numpy()] == ["▁", "–", "hh", "hh", "h"]


@pytest.mark.parametrize("piece", ["(", "£", "–"])  # user-defined, 1, 2 and 3 bytes
def test_user_defined_score_is_the_sentencepiece_library_s(spiece, piece):
    """Measures the score the `sentencepiece` library gives a user-defined
    piece: `piece + "zq"` as one normal piece of score `s` against `piece`
    and a normal piece `"zq"` of score -5 wins exactly when `s` is above
    `-5 + user_defined_score(piece)` (the model's own score for it, 0, is
    not used)."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2

    from keras_act.tokenizers.albert_act_tokenizer import user_defined_score

    def encode(whole_score):
        model = sentencepiece_model_pb2.ModelProto()
        model.ParseFromString(spiece.read_bytes())
        assert {p.piece: p.type for p in model.pieces}[piece] == model.SentencePiece.USER_DEFINED
        model.pieces.add(piece="zq", score=-5.0, type=model.SentencePiece.NORMAL)
        model.pieces.add(piece=piece + "zq", score=whole_score, type=model.SentencePiece.NORMAL)
        processor = spm.SentencePieceProcessor(model_proto=model.SerializeToString())
        return processor.encode(piece + "zq", out_type=str)

    threshold = -5.0 + user_defined_score(piece)
    assert encode(threshold + 1e-3) == ["▁", piece + "zq"]
    assert encode(threshold - 1e-3) == ["▁", piece, "zq"]


@pytest.mark.parametrize("kind", ["bpe", "byte_fallback"])
def test_sentencepiece_model_the_in_graph_tokenizer_cannot_encode(tmp_path, kind):
    """tensorflow-text encodes every model as a unigram one and gives `<unk>`
    for what `sentencepiece` gives as byte pieces: such models are refused by
    name (they were accepted and gave other ids than `sentencepiece`)."""
    sentencepiece = pytest.importorskip("sentencepiece")
    corpus = synthetic_corpus(tmp_path / "corpus.txt")
    options = {"model_type": "bpe"} if kind == "bpe" else {"byte_fallback": True}
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(tmp_path / kind), vocab_size=400, pad_id=0,
        unk_id=1, bos_id=-1, eos_id=-1, control_symbols=["[CLS]", "[SEP]", "[MASK]"],
        minloglevel=2, **options,
    )  # fmt: skip
    message = "is a SentencePiece BPE model" if kind == "bpe" else "with byte pieces"
    with pytest.raises(ValueError, match=rf"{kind}.model.*{message}"):
        AlbertActTokenizer(proto=str(tmp_path / f"{kind}.model"))


def test_unused_pieces_are_never_given_as_in_hugging_face(spiece, tmp_path):
    """A piece marked unused is skipped by `sentencepiece`; tensorflow-text
    refused the model ("Invalid SentencePiece piece type")."""
    from sentencepiece import sentencepiece_model_pb2

    model = sentencepiece_model_pb2.ModelProto()
    model.ParseFromString(spiece.read_bytes())
    for piece in model.pieces:
        if piece.piece in ("▁the", "▁cat"):
            piece.type = piece.UNUSED
    path = tmp_path / "unused.model"
    path.write_bytes(model.SerializeToString())
    tokenizer = AlbertActTokenizer(proto=str(path))
    texts = ["the cat sat on the mat.", "The CAT", "cathedral"]
    got = tokenizer(texts).to_list()
    expected = reference_ids(hf_albert_tokenizer(path), texts)
    assert got == expected, describe_mismatches(texts, got, expected)
    assert tokenizer.token_to_id("▁the") not in sum(got, [])
