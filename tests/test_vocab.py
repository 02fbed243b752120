"""Tests of `training.vocab`: ALBERT-compatible SentencePiece vocabularies."""

import subprocess
import sys
from pathlib import Path

import pytest
import sentencepiece as spm

from keras_act import AlbertActTokenizer
from keras_act.tokenizers.albert_act_tokenizer import SPECIAL_TOKENS as TOKENIZER_SPECIAL_TOKENS
from tests.helpers import (
    ALBERT_SPIECE,
    HARD_CASES,
    WIKITEXT,
    describe_mismatches,
    fuzz_texts,
    glue_sentences,
    hf_albert_tokenizer,
    require_shared,
    synthetic_corpus,
)
from training.vocab import SPECIAL_TOKENS, normalize_text, train_vocabulary

REPO = Path(__file__).resolve().parents[1]
ALBERT_SYMBOLS = ["(", ")", '"', "-", ".", "–", "£", "€"]


@pytest.fixture(scope="module")
def wiki_vocab(tmp_path_factory):
    """A 2000-piece vocabulary trained on WikiText-2 validation (as ALBERT's)."""
    folder = tmp_path_factory.mktemp("wiki_vocab")
    path = train_vocabulary(
        [require_shared(WIKITEXT)], 2000, folder, user_defined_symbols=ALBERT_SYMBOLS, seed=0
    )
    return path


def pieces(path):
    processor = spm.SentencePieceProcessor(model_file=str(path))
    return processor, [processor.id_to_piece(i) for i in range(processor.get_piece_size())]


def test_albert_layout_on_wikitext(wiki_vocab):
    assert wiki_vocab.name == "spiece.model" and wiki_vocab.with_suffix(".vocab").is_file()
    processor, vocab = pieces(wiki_vocab)
    assert len(vocab) == 2000
    assert vocab[:13] == ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"] + ALBERT_SYMBOLS
    assert [processor.pad_id(), processor.unk_id(), processor.bos_id(), processor.eos_id()] == [
        0,
        1,
        -1,
        -1,
    ]
    assert all(processor.is_control(i) for i in (0, 2, 3, 4)) and processor.is_unknown(1)
    ours, albert = model_proto(wiki_vocab), model_proto(require_shared(ALBERT_SPIECE))
    assert ours.trainer_spec.model_type == albert.trainer_spec.model_type  # unigram
    assert ours.normalizer_spec.name == albert.normalizer_spec.name == "nmt_nfkc"
    assert ours.normalizer_spec.add_dummy_prefix and albert.normalizer_spec.add_dummy_prefix
    # Lower-cased text, and WikiText's `<unk>` markers removed, not learnt.
    assert all(p == p.lower() for p in vocab[5:])
    assert not any("unk>" in p or "<un" in p for p in vocab[5:])
    lines = [
        f.split("\t")[0] for f in wiki_vocab.with_suffix(".vocab").read_text("utf-8").splitlines()
    ]
    assert lines == vocab


def model_proto(path):
    from sentencepiece import sentencepiece_model_pb2

    model = sentencepiece_model_pb2.ModelProto()
    model.ParseFromString(Path(path).read_bytes())
    return model


def test_trained_vocabulary_tokenizes_as_hugging_face(wiki_vocab):
    tokenizer = AlbertActTokenizer(proto=str(wiki_vocab))
    hf = hf_albert_tokenizer(wiki_vocab)
    texts = glue_sentences()[:500] + HARD_CASES + fuzz_texts(300, seed=3)
    got = tokenizer(texts).to_list()
    expected = [hf.encode(t, add_special_tokens=False) for t in texts]
    assert got == expected, describe_mismatches(texts, got, expected)
    assert tokenizer("[MASK] [CLS]").numpy().tolist() == [4, 2]


def test_normalize_text_is_the_tokenizers_preprocessing():
    hf = hf_albert_tokenizer(require_shared(ALBERT_SPIECE))
    texts = [t for t in HARD_CASES + fuzz_texts(300, seed=4) if "<" not in t and "[" not in t]
    assert [normalize_text(t) for t in texts] == [hf.preprocess_text(t) for t in texts]
    assert normalize_text("A <unk> b [MASK] <PAD>") == "a b"
    assert SPECIAL_TOKENS == TOKENIZER_SPECIAL_TOKENS


def test_same_seed_same_vocabulary(tmp_path):
    corpus = synthetic_corpus(tmp_path / "corpus.txt")
    first = train_vocabulary([corpus], 100, tmp_path / "a", seed=7, input_sentence_size=200)
    second = train_vocabulary(corpus, 100, tmp_path / "b", seed=7, input_sentence_size=200)
    assert first.with_suffix(".vocab").read_text("utf-8") == second.with_suffix(".vocab").read_text(
        "utf-8"
    )


def test_command_line(tmp_path):
    corpus = synthetic_corpus(tmp_path / "corpus.txt")
    result = subprocess.run(
        [sys.executable, "-m", "training.vocab", "--corpus", str(corpus), str(corpus),
         "--vocab-size", "90", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "90 pieces, <pad>=0, <unk>=1, [CLS]=2, [SEP]=3, [MASK]=4" in result.stdout
    assert AlbertActTokenizer(proto=str(tmp_path / "out" / "spiece.model")).vocabulary_size() == 90


@pytest.mark.parametrize(
    "make, vocab_size, message",
    [
        (lambda d: [d / "missing.txt"], 100, "Corpus file not found: '.*missing.txt'"),
        (
            lambda d: [_write(d / "e.txt", ""), _write(d / "w.txt", " \n\t\n")],
            100,
            "corpus is empty",
        ),
        (lambda d: [_write(d / "u.txt", "<unk> [MASK]\n<UNK>\n")], 100, "corpus is empty"),
        (lambda d: [synthetic_corpus(d / "c.txt")], 100_000, "Vocabulary size too high"),
        (lambda d: [synthetic_corpus(d / "c.txt")], 4, "must be at least 6"),
        (lambda d: [], 100, "No corpus files"),
    ],
)
def test_errors(tmp_path, make, vocab_size, message):
    files = make(tmp_path)
    error = FileNotFoundError if "not found" in message else ValueError
    with pytest.raises(error, match=message):
        train_vocabulary(files, vocab_size, tmp_path / "out")
    if files:
        result = subprocess.run(
            [sys.executable, "-m", "training.vocab", "--corpus", *map(str, files),
             "--vocab-size", str(vocab_size), "--out", str(tmp_path / "cli")],
            capture_output=True, text=True, cwd=REPO,
        )  # fmt: skip
        assert result.returncode == 2
        assert "error:" in result.stderr and result.stdout == ""


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_keep_existing_keeps_a_vocabulary_another_worker_wrote_first(tmp_path):
    """Two workers of one run train the run's vocabulary at once; the second
    to finish keeps the first one's file (SentencePiece's threaded training
    is not bit-exact, and both must use the same ids)."""
    first_corpus = tmp_path / "a.txt"
    first_corpus.write_text("\n".join(f"the cat number {i} sat on the mat" for i in range(300)))
    other_corpus = tmp_path / "b.txt"
    other_corpus.write_text("\n".join(f"a dog called {i} ran in the park" for i in range(300)))
    first = train_vocabulary([first_corpus], 40, tmp_path / "vocab", seed=1)
    written = first.read_bytes()
    kept = train_vocabulary([other_corpus], 40, tmp_path / "vocab", seed=1, keep_existing=True)
    assert kept == first and kept.read_bytes() == written
    assert sorted(p.name for p in (tmp_path / "vocab").iterdir()) == ["spiece.model", "spiece.vocab"]
    replaced = train_vocabulary([other_corpus], 40, tmp_path / "vocab", seed=1)
    assert replaced.read_bytes() != written
