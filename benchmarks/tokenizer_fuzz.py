"""Fuzz: `AlbertActTokenizer` against Hugging Face's slow `AlbertTokenizer`.

    python benchmarks/tokenizer_fuzz.py [--count 100000] [--seed 0] [--vocab PATH]

Random strings that mix scripts (Latin with accents, Greek, Cyrillic, CJK,
Hangul, Arabic, Devanagari, Thai), emoji (with skin tones, ZWJ sequences and
flags), digits of several scripts, punctuation, whitespace of every kind
and control characters, in runs of repeated letters that make equal-score
SentencePiece segmentations (`"中hhh"`), with ALBERT's special tokens typed
in. Prints the number of strings whose ids differ (and the first ones);
exits 1 when any does. `random_texts` is also the CI-sized fuzz of
`tests/test_tokenizer_fuzz.py`. Needs `../shared` (ALBERT's vocabulary;
`KERAS_ACT_SHARED` overrides it) or `--vocab`, and `transformers`.
"""

import argparse
import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KERAS_ACT_SHARED", REPO.parent / "shared"))

# Character pools, each drawn from as a whole: one pool per script or kind.
POOLS = {
    "ascii_letters": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "latin_accents": "éèêëáàâäãåçñóòôöõúùûüíìîïýÿœæßøÉÀÇÑÖÜŒÆØǅǈǋĳŉſ",
    "combining": "\u0300\u0301\u0302\u0303\u0308\u0327\u030a\u0331",
    "greek": "αβγδεζηθικλμνξοπρσςτυφχψωΑΒΓΔΣΩάέήίόύώ",
    "cyrillic": "абвгдежзийклмнопрстуфхцчшщъыьэюяАБВГДЁЖЗ",
    "cjk": "中文字符日本語的一是不了人我在有他这国年",
    "kana": "ひらがなカタカナのにをはーッ",
    "hangul": "한국어텍스트가나다라마바사",
    "arabic": "العربيةكتابمرحبا",
    "devanagari": "हिन्दीभाषाकखग",
    "thai": "ภาษาไทยเกี่ยวกับ",
    "emoji": ["😀", "👍🏽", "🇫🇷", "❤️", "👨‍👩‍👧", "🎉", "🤖", "✨", "🙃", "🐍"],
    "digits": "0123456789٠١٢٣٤٥٦٧٨٩०१२३①②³½",
    "punctuation": ".,;:!?'\"`()[]{}<>-_/\\@#$%^&*+=~|“”‘’«»„—–…·•¡¿。、！？",
    "whitespace": [" ", " ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\u00a0", "\u2009",
                   "\u3000", "\u2028", "\u2029", "\x85", "\x1c", "\u200b", "\ufeff"],
    "control": ["\x00", "\x01", "\x07", "\x08", "\x1b", "\x7f", "\x9f", "\u200d", "\u200e",
                "\u00ad", "\ufffd"],
    "special": ["[MASK]", "[CLS]", "[SEP]", "<pad>", "<unk>", "<PAD>", "[mask]"],
}  # fmt: skip
WORDS = ["the", "fox", "eee", "hhh", "aaa", "lll", "ooo", "1,000", "2010,", "''", "``", "don't"]


def random_texts(count, seed=0):
    """`count` random strings of 0 to ~60 characters, reproducible from `seed`.

    Each string is a sequence of runs: a run draws 1-4 characters from one
    pool (or an English word, or a repeated letter) and may repeat them.

    Example:

    >>> texts = random_texts(3, seed=1)
    >>> len(texts), texts == random_texts(3, seed=1)
    (3, True)
    """
    rng = random.Random(seed)
    names = sorted(POOLS)
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(0, 12)):
            kind = rng.random()
            if kind < 0.15:
                parts.append(rng.choice(WORDS))
            elif kind < 0.3:
                parts.append(rng.choice("aehlostxz") * rng.randint(2, 5))
            else:
                pool = POOLS[rng.choice(names)]
                run = "".join(rng.choice(pool) for _ in range(rng.randint(1, 4)))
                parts.append(run * rng.choice((1, 1, 1, 2)))
        texts.append("".join(parts))
    return texts


def compare(tokenizer, hf, texts, batch_size=1000):
    """The indices of `texts` whose ids differ from Hugging Face's, and the ids."""
    differences = []
    for start in range(0, len(texts), batch_size):
        batch = texts[start : start + batch_size]
        got = tokenizer(batch).to_list()
        for offset, (text, ids) in enumerate(zip(batch, got, strict=True)):
            expected = hf.encode(text, add_special_tokens=False)
            if ids != expected:
                differences.append((start + offset, ids, expected))
    return differences


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="strings (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--vocab",
        default=str(SHARED / "data" / "albert_v2_spiece.model"),
        help="SentencePiece model (default: %(default)s, ALBERT's)",
    )
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error(f"--count must be a positive integer. Received: {args.count}")
    if not Path(args.vocab).is_file():
        print(f"Skipped: {args.vocab} is absent (set KERAS_ACT_SHARED or pass --vocab).")
        return 0
    try:
        import transformers
    except ImportError:
        print("Skipped: the Hugging Face reference needs `transformers` (pip install -e .[dev]).")
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras_act

    transformers.logging.set_verbosity_error()
    tokenizer = keras_act.AlbertActTokenizer(proto=args.vocab)
    hf = transformers.AlbertTokenizer(vocab_file=args.vocab)
    texts = random_texts(args.count, args.seed)
    start = time.perf_counter()
    differences = compare(tokenizer, hf, texts)
    seconds = time.perf_counter() - start
    print(
        f"{len(differences)} differences in {args.count} random strings "
        f"(seed {args.seed}, {Path(args.vocab).name}, {seconds:.0f} s)"
    )
    for index, got, expected in differences[:10]:
        print(f"  {texts[index]!r}: {got} != Hugging Face {expected}")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
