"""Trains an ALBERT-compatible SentencePiece vocabulary.

    python -m training.vocab --corpus FILE [FILE ...] --vocab-size N --out DIR

writes `DIR/spiece.model` and `DIR/spiece.vocab`: a unigram model like
ALBERT's `30k-clean.model`, with `<pad>`=0, `<unk>`=1, `[CLS]`=2, `[SEP]`=3,
`[MASK]`=4 and the `nmt_nfkc` normaliser, trained on the text exactly as
`keras_act.AlbertActTokenizer` hands it to SentencePiece (lower-cased, accents
stripped, whitespace collapsed, special tokens such as WikiText's `<unk>`
removed). Load it with `keras_act.AlbertActTokenizer(proto="DIR/spiece.model")`.
"""

import argparse
import os
import re
import shutil
import sys
import tempfile
import unicodedata
from pathlib import Path

import sentencepiece as spm

from keras_act.tokenizers.special_tokens import SPECIAL_TOKENS
from training.run_files import remove_stale_leftovers, staging_prefix

MODEL_FILENAME = "spiece.model"
VOCAB_FILENAME = "spiece.vocab"
# Ids 0 and 1, then the control symbols at ids 2, 3 and 4, as ALBERT's model.
PAD_PIECE, UNK_PIECE = "<pad>", "<unk>"
CONTROL_SYMBOLS = ("[CLS]", "[SEP]", "[MASK]")
# The tokenizer splits `SPECIAL_TOKENS` out of the text before SentencePiece,
# so they are no training text either.
_SPECIAL_RE = re.compile("|".join(re.escape(token) for token in SPECIAL_TOKENS))


def normalize_text(text):
    """The text `AlbertActTokenizer` gives SentencePiece, in Python.

    Special tokens are removed (before and after lower-casing, as the
    tokenizer splits them out), then Hugging Face's
    `AlbertTokenizer.preprocess_text`: whitespace collapsed and stripped,
    ` `` ` and `''` to `"`, accents stripped (NFKD without combining
    characters), lower-cased.

    Args:
        text: str, one line of the corpus.

    Returns:
        str, the normalised line (empty for a blank line).
    """
    text = _SPECIAL_RE.sub(" ", text)
    text = _SPECIAL_RE.sub(" ", text.lower())
    text = " ".join(text.split())
    text = text.replace("``", '"').replace("''", '"')
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return text.lower()


def train_vocabulary(
    corpus_files,
    vocab_size,
    out_dir,
    *,
    user_defined_symbols=(),
    character_coverage=0.99995,
    input_sentence_size=10_000_000,
    max_sentence_length=65536,
    num_threads=None,
    seed=None,
    verbose=False,
    keep_existing=False,
):
    """Trains an ALBERT-compatible unigram SentencePiece model.

    The settings of ALBERT's own `30k-clean.model`: unigram, `nmt_nfkc`,
    `<pad>`=0, `<unk>`=1, control symbols `[CLS]`=2, `[SEP]`=3, `[MASK]`=4,
    no BOS/EOS, on lower-cased text (`normalize_text`, one sentence per
    non-blank line). ALBERT also declared `( ) " - . – £ €` as user-defined
    symbols (ids 5-12); pass them in `user_defined_symbols` to do the same.

    Args:
        corpus_files: paths of UTF-8 text files (invalid bytes are read as
            U+FFFD), one sentence or paragraph per line.
        vocab_size: int, number of pieces, the 5 special ones included.
        out_dir: folder to write `spiece.model` and `spiece.vocab` to
            (created if needed).
        user_defined_symbols: strings always kept whole, at ids 5, 6, ...
        character_coverage: float, share of characters the model covers
            (rarer ones become `<unk>`). Defaults to ALBERT's 0.99995.
        input_sentence_size: int, lines sampled for training.
        max_sentence_length: int, longer lines (in bytes) are skipped.
        num_threads: int, trainer threads. Defaults to the CPU count.
        seed: int, seed of SentencePiece's random generator (the sampling
            and shuffling of lines), for a reproducible vocabulary.
        verbose: bool, let SentencePiece log its progress.
        keep_existing: bool, when `out_dir/spiece.model` appears while
            training (another process trained it first, e.g. another
            worker of the same run), keep it and return it instead of
            replacing it, so that all processes use the same file.
            SentencePiece's multi-threaded training is not bit-exact
            between two runs.

    Returns:
        `pathlib.Path` of the written `spiece.model`.

    Raises:
        FileNotFoundError: a corpus file does not exist.
        ValueError: no corpus files, an empty corpus, a bad `vocab_size`
            (including one too large for the corpus).

    Example:

    ```python
    from training.vocab import train_vocabulary
    path = train_vocabulary(["wiki.train.tokens"], 8000, "vocab/")
    tokenizer = keras_act.AlbertActTokenizer(proto=str(path))
    ```
    """
    if isinstance(corpus_files, (str, os.PathLike)):
        corpus_files = [corpus_files]
    corpus_files = [Path(path) for path in corpus_files]
    if not corpus_files:
        raise ValueError("No corpus files given: pass at least one text file.")
    for path in corpus_files:
        if not path.is_file():
            raise FileNotFoundError(f"Corpus file not found: '{path}'.")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise ValueError(f"`vocab_size` must be an int. Received: vocab_size={vocab_size!r}")
    user_defined_symbols = list(user_defined_symbols)
    minimum = 1 + len(SPECIAL_TOKENS) + len(user_defined_symbols)
    if vocab_size < minimum:
        raise ValueError(
            f"`vocab_size` must be at least {minimum} (5 special pieces, "
            f"{len(user_defined_symbols)} user-defined symbols and one more). "
            f"Received: vocab_size={vocab_size}"
        )
    for symbol in user_defined_symbols:
        if not symbol or "," in symbol or symbol in SPECIAL_TOKENS:
            raise ValueError(
                "User-defined symbols must be non-empty, without commas and not "
                f"special tokens. Received: {symbol!r}"
            )

    lines = {"count": 0}

    def sentences():
        for path in corpus_files:
            with open(path, encoding="utf-8", errors="replace") as file:
                for line in file:
                    line = normalize_text(line)
                    if line:
                        lines["count"] += 1
                        yield line

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_leftovers(str(out_dir))
    stem = Path(MODEL_FILENAME).stem
    if seed is not None:
        spm.set_random_generator_seed(int(seed))
    # SentencePiece writes its files as it goes: train in a private folder and
    # move them into place (`.model` last), so no reader (another worker of
    # the same run) ever sees half of one.
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=staging_prefix("training")))
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=sentences(),
            model_prefix=str(staging / stem),
            vocab_size=vocab_size,
            model_type="unigram",
            normalization_rule_name="nmt_nfkc",
            pad_id=0,
            unk_id=1,
            bos_id=-1,
            eos_id=-1,
            pad_piece=PAD_PIECE,
            unk_piece=UNK_PIECE,
            control_symbols=list(CONTROL_SYMBOLS),
            user_defined_symbols=user_defined_symbols,
            character_coverage=character_coverage,
            input_sentence_size=input_sentence_size,
            shuffle_input_sentence=True,
            max_sentence_length=max_sentence_length,
            num_threads=num_threads or os.cpu_count() or 1,
            minloglevel=0 if verbose else 2,
        )
        if keep_existing:
            if not _link_if_absent(staging / MODEL_FILENAME, out_dir / MODEL_FILENAME):
                # Another process (a worker of the same run) finished first:
                # every process uses that one vocabulary.
                return out_dir / MODEL_FILENAME
            os.replace(staging / f"{stem}.vocab", out_dir / f"{stem}.vocab")
        else:
            os.replace(staging / f"{stem}.vocab", out_dir / f"{stem}.vocab")
            os.replace(staging / MODEL_FILENAME, out_dir / MODEL_FILENAME)
    except RuntimeError as error:
        names = ", ".join(f"'{path}'" for path in corpus_files)
        if lines["count"] == 0:
            raise ValueError(f"The corpus is empty: {names} hold no text.") from None
        raise ValueError(
            f"SentencePiece could not train a {vocab_size}-piece vocabulary on "
            f"{names} ({lines['count']} lines): {error}"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir / MODEL_FILENAME


def build_parser():
    from training.cli import HelpFormatter

    parser = argparse.ArgumentParser(
        prog="python -m training.vocab",
        description="Train an ALBERT-compatible SentencePiece vocabulary "
        "(<pad>=0, <unk>=1, [CLS]=2, [SEP]=3, [MASK]=4, unigram, lower-cased).",
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--corpus", nargs="+", required=True, metavar="FILE", help="UTF-8 text files."
    )
    parser.add_argument(
        "--vocab-size", type=int, required=True, metavar="N", help="pieces, the 5 special ones included"
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="writes DIR/spiece.model and .vocab"
    )
    parser.add_argument(
        "--user-defined-symbols",
        nargs="*",
        default=[],
        metavar="SYMBOL",
        help="pieces kept whole, e.g. ALBERT's ( ) \" - . – £ €",
    )
    parser.add_argument(
        "--character-coverage",
        type=float,
        default=0.99995,
        help="share of the characters covered (rarer ones become <unk>)",
    )
    parser.add_argument(
        "--input-sentence-size", type=int, default=10_000_000, help="lines sampled for training"
    )
    parser.add_argument("--seed", type=int, default=None, help="for a reproducible vocabulary")
    parser.add_argument("--verbose", action="store_true", help="SentencePiece's own logs")
    return parser


def _link_if_absent(source, target):
    """Moves `source` to `target` unless `target` exists (atomically where
    hard links work); returns whether it did."""
    try:
        os.link(source, target)
    except FileExistsError:
        return False
    except OSError:  # no hard links on this file system
        if target.exists():
            return False
        os.replace(source, target)
        return True
    return True


def main(argv=None):
    from training.cli import exit_with_error, output_folder_error

    parser = build_parser()
    args = parser.parse_args(argv)
    error = output_folder_error(args.out, "--out")
    if error:
        exit_with_error(parser, error)
    try:
        path = train_vocabulary(
            args.corpus,
            args.vocab_size,
            args.out,
            user_defined_symbols=args.user_defined_symbols,
            character_coverage=args.character_coverage,
            input_sentence_size=args.input_sentence_size,
            seed=args.seed,
            verbose=args.verbose,
        )
    except (ValueError, OSError) as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    processor = spm.SentencePieceProcessor(model_file=str(path))
    print(
        f"Wrote {path} and {path.with_suffix('.vocab')}: {processor.get_piece_size()} "
        "pieces, " + ", ".join(f"{processor.id_to_piece(i)}={i}" for i in range(5))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
