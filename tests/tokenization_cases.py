"""Shared inputs of the tokenizer, preprocessor and vocabulary tests."""

import random

import pytest

from tests.conftest import SHARED_DIR, require_shared

ALBERT_SPIECE = SHARED_DIR / "data" / "albert_v2_spiece.model"
COLA_DEV = SHARED_DIR / "data" / "glue" / "CoLA" / "dev.tsv"
SST2_DEV = SHARED_DIR / "data" / "glue" / "SST-2" / "dev.tsv"
WIKITEXT = SHARED_DIR / "data" / "corpus" / "wikitext2_wiki.valid.tokens"

LONG_TEXT = " ".join(
    ["The Quick brown fox, aged 1,234 years, jumps over the naïve café's «lazy» dog!"] * 400
)

# Hand-written hard cases: every one must give Hugging Face's ids.
HARD_CASES = [
    "Test sentence with [MASK].",
    "a lump in the middle of the monkeys stirred and then fell quiet .",
    "I am still waiting on my card?",
    "Crème brûlée, naïve façade, Ångström, São Paulo, Dvořák, Zürich.",
    "ÉCOLE ÇA Œuvre ǅemal İstanbul ΣΟΦΟΣ ΑΣ straße Ĳssel ŉ ǈ",
    "e\u0301 a\u0308 n\u0303: combining marks, Thai เกี่ยว",
    "“Curly” ‘quotes’ „low“ «guillemets» ``doubled'' ''twice`` ```triple''' \"plain\"",
    "1,000,000 and 2,5 and 2010, 2011, the 1990s, 3,, ,4 and 5,",
    "Tabs\tand\nnewlines\r\nand\x0bvertical\x0cfeeds",
    "no\u00a0break\u3000ideographic\u2028line\u2029para\u200bzero\u2003em\x85nel\x1cfs",
    "Emoji 😀👍🏽 🇫🇷 ❤️ and symbols ™ © ½ ① ² ﬁ ＡＢＣ",
    "中文字符 日本語のテキスト 한국어 텍스트",
    "",
    "   ",
    "\t\n \u3000",
    "[MASK]",
    "The [MASK] sat on the [MASK].",
    "[mask] [Mask] <PAD> <Unk> <pad><unk>[CLS][SEP]",
    "glued[MASK]text and [MASK]  spaced  [SEP]   x",
    "a\x00b, NUL \x00 bytes",
    "rated eee for excitement",
    "don't can't won't it's l'homme",
    LONG_TEXT,
]


def fuzz_texts(count=1500, seed=0):
    """Random strings over an alphabet of the characters that need care."""
    alphabet = list("abcXYZ 019,.'`\"[]<>MASKCLSEPpadunk\t\n\x00") + [
        "\u00a0", "\u3000", "\u2028", "\x85", "\x1c", "é", "É", "Σ", "ß", "İ", "ǅ",
        "😀", "中", "\u0301", "①", "²", "٣", "ﬁ", "Ⅻ", "ｆ", "𝐀", "𝚺", "“", "”",
    ]  # fmt: skip
    words = ["[MASK]", "[CLS]", "<pad>", "<PAD>", "<unk>", "[mask]", "1,", "2010,", " ", "''"]
    rng = random.Random(seed)
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(count)]
    texts += [
        "".join(rng.choice(words + alphabet) for _ in range(rng.randint(0, 10)))
        for _ in range(count // 2)
    ]
    return texts


def glue_sentences():
    """Every sentence of GLUE CoLA dev (column 4) and SST-2 dev (column 1)."""
    cola = require_shared(COLA_DEV).read_text(encoding="utf-8").split("\n")
    sst2 = require_shared(SST2_DEV).read_text(encoding="utf-8").split("\n")
    assert sst2[0] == "sentence\tlabel"
    sentences = [line.split("\t")[3] for line in cola if line]
    sentences += [line.split("\t")[0] for line in sst2[1:] if line]
    assert len(sentences) == 1043 + 872
    return sentences


def hf_albert_tokenizer(vocab_file, **kwargs):
    """The reference: the slow `transformers.AlbertTokenizer`."""
    transformers = pytest.importorskip(
        "transformers", reason="the reference AlbertTokenizer needs `transformers` (dev extra)"
    )
    transformers.logging.set_verbosity_error()
    return transformers.AlbertTokenizer(vocab_file=str(vocab_file), **kwargs)


def synthetic_corpus(path, lines=400, seed=0):
    """Writes a small deterministic English-like corpus (no ../shared needed)."""
    rng = random.Random(seed)
    syllables = "ka lo mi ne ru sa to vi be da fe gu hi jo".split()
    words = (
        "the a fox bear owl river forest quickly slowly ran ate saw big small red "
        "green house garden and then later it was on in of with 1,000 2,500 2010, "
        "café naïve Über Straße “quoted” don't it's"
    ).split()
    words += ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 3))) for _ in range(150)]
    text = "\n".join(
        " ".join(rng.choice(words) for _ in range(rng.randint(4, 14))).capitalize() + " ."
        for _ in range(lines)
    )
    path.write_text(text + "\n", encoding="utf-8")
    return path


def describe_mismatches(texts, got, expected, limit=5):
    """A readable list of the inputs whose ids differ."""
    bad = [(t, g, e) for t, g, e in zip(texts, got, expected, strict=True) if g != e]
    lines = [f"{len(bad)} of {len(texts)} differ"]
    lines += [f"  {t[:80]!r}: got {g[:24]}, expected {e[:24]}" for t, g, e in bad[:limit]]
    return "\n".join(lines)
