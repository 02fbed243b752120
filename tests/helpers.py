"""The tests' one helper module: tiny models, tiny vocabularies, shared data and checks.

Holds no tests. Sections: the `../shared` folder; tiny backbones and layers;
tiny SentencePiece vocabularies and the tokenizer cases; small learnable
synthetic tasks; export references; the depth-analysis model; running a
command-line module; the documentation's bash blocks; a hand-built batch of
depth statistics. Shared pytest fixtures are in `conftest.py`.
"""

import atexit
import functools
import os
import random
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# === ../shared: data and reference fixtures beside the repository ===

# `../shared` beside the repository (read-only data and reference fixtures);
# a user's clone has none, CI always has it.
SHARED_DIR = Path(os.environ.get("KERAS_ACT_SHARED", REPO_ROOT.parent / "shared"))
REFERENCE_DIR = SHARED_DIR / "fixtures" / "albert_act_reference"


def require_shared(path=SHARED_DIR):
    """Skips the calling test when `path` (under ../shared) is absent."""
    if not Path(path).exists():
        pytest.skip(
            f"{path} is absent: the shared data/fixtures folder is only beside "
            "the repository on CI and developer machines (set KERAS_ACT_SHARED)."
        )
    return Path(path)


# === Tiny backbones and layers ===

TINY_BACKBONE_CONFIG = dict(
    embedding_dim=16,
    hidden_dim=32,
    num_heads=4,
    intermediate_dim=64,
    max_layers=6,
    max_sequence_length=64,
)


def tiny_backbone_config(vocabulary_size, **overrides):
    """The arguments of a small `AlbertActBackbone` (hidden 32, at most 6 layers)."""
    return dict(TINY_BACKBONE_CONFIG, vocabulary_size=vocabulary_size, **overrides)


def tiny_backbone(vocabulary_size, seed=1, **overrides):
    """A small `AlbertActBackbone` (hidden 32, at most 6 layers).

    Args:
        vocabulary_size: int.
        seed: int, the Keras seed set first; `None` leaves the random state
            as the caller set it.
        **overrides: other arguments of `AlbertActBackbone`.
    """
    import keras

    import keras_act

    if seed is not None:
        keras.utils.set_random_seed(seed)
    return keras_act.AlbertActBackbone(**tiny_backbone_config(vocabulary_size, **overrides))


def tiny_task_backbone(vocabulary_size, max_layers=3, **overrides):
    """The task tests' backbone: `tiny_backbone` with a cap of 3, seed left as set."""
    return tiny_backbone(vocabulary_size, seed=None, max_layers=max_layers, **overrides)


def varied_depth_backbone(vocabulary_size, seed=1):
    """A small backbone (hidden 32, cap 6) whose tokens use 1 to 6 layers.

    A random initialisation gives every token a halting probability close
    to 0.5 (2 or 3 updates); the halting unit is redrawn (kernel N(0, 1),
    bias -1.5) so that depths vary from token to token, as in the authors'
    reference fixtures.
    """
    backbone = tiny_backbone(vocabulary_size, seed=seed, max_layers=ANALYSIS_MAX_LAYERS)
    halting = backbone.get_layer("albert_act").halting_dense
    rng = np.random.default_rng(seed)
    halting.kernel.assign(rng.normal(0.0, 1.0, halting.kernel.shape).astype("float32"))
    halting.bias.assign(np.full(halting.bias.shape, -1.5, "float32"))
    return backbone


TINY_ACT_CONFIG = dict(hidden_dim=32, num_heads=4, intermediate_dim=64, max_layers=6)


def tiny_act_layer(seed=0, halting_bias=-1.0, **overrides):
    """A built `AlbertAct` layer of `TINY_ACT_CONFIG` whose depths vary."""
    import keras

    import keras_act

    keras.utils.set_random_seed(seed)
    layer = keras_act.AlbertAct(
        **dict(TINY_ACT_CONFIG, **overrides),
        halting_bias_initializer=keras.initializers.Constant(halting_bias),
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.2),
    )
    layer.build((None, None, layer.hidden_dim))
    return layer


# === Tiny SentencePiece vocabularies and the tokenizer cases ===


def train_tiny_sentencepiece(path, vocab_size=200, seed=0):
    """Trains an ALBERT-compatible SentencePiece model on generated sentences.

    `<pad>` 0, `<unk>` 1, `[CLS]` 2, `[SEP]` 3, `[MASK]` 4, as ALBERT's.
    """
    rng = random.Random(seed)
    words = (
        "the quick brown fox jumps over lazy dog a cat sat on mat depth layer token "
        "model serving text café naïve über 1,000 2,500 zürich capital france is"
    ).split()
    letters = "abcdefghijklmnoprstuvw"
    words += ["".join(rng.choice(letters) for _ in range(rng.randint(2, 7))) for _ in range(300)]
    sentences = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) for _ in range(400)]
    import sentencepiece as spm

    spm.set_random_generator_seed(seed)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_prefix=str(path).removesuffix(".model"),
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        model_type="unigram",
        pad_id=0,
        unk_id=1,
        bos_id=-1,
        eos_id=-1,
        pad_piece="<pad>",
        unk_piece="<unk>",
        control_symbols=["[CLS]", "[SEP]", "[MASK]"],
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
    )
    return str(path)


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


@functools.cache
def tiny_albert_proto():
    """The serialized 120-piece vocabulary of `synthetic_corpus` (trained once).

    For `unittest`-style tests, which take no pytest fixtures (the
    `tiny_spiece` fixture of `conftest.py` is the same model, as a file).
    """
    from training.vocab import train_vocabulary

    with tempfile.TemporaryDirectory() as folder:
        path = train_vocabulary([synthetic_corpus(Path(folder) / "corpus.txt")], 120, folder)
        return Path(path).read_bytes()


def describe_mismatches(texts, got, expected, limit=5):
    """A readable list of the inputs whose ids differ."""
    bad = [(t, g, e) for t, g, e in zip(texts, got, expected, strict=True) if g != e]
    lines = [f"{len(bad)} of {len(texts)} differ"]
    lines += [f"  {t[:80]!r}: got {g[:24]}, expected {e[:24]}" for t, g, e in bad[:limit]]
    return "\n".join(lines)


# === Small learnable synthetic tasks (no ../shared needed) ===

POSITIVE = ("good", "great", "lovely", "superb")
NEGATIVE = ("bad", "awful", "dull", "poor")
COLORS = ("red", "green", "blue", "yellow")
FILLER = (
    "the a movie film story plot actor scene it was is and of with very quite "
    "ending music river forest fox owl ran saw house garden then later"
).split()


def write_corpus(path, lines=600, seed=0):
    """Sentences over the words of the synthetic tasks, for a vocabulary."""
    rng = random.Random(seed)
    words = FILLER + list(POSITIVE + NEGATIVE + COLORS) + ["which", "color", "?", "what"]
    # Rarer made-up words, so that the task words get pieces of their own.
    syllables = "ka lo mi ne ru sa to vi be da fe gu hi jo".split()
    rare = ["".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(800)]
    text = "\n".join(
        " ".join(rng.choice(words) for _ in range(rng.randint(3, 10)))
        + " "
        + rng.choice(rare)
        + " ."
        for _ in range(lines)
    )
    path.write_text(text + "\n", encoding="utf-8")
    return path


def train_tiny_vocabulary(folder, size=150):
    """An ALBERT-compatible SentencePiece model of `size` pieces; its path."""
    from training.vocab import train_vocabulary

    folder.mkdir(parents=True, exist_ok=True)
    corpus = write_corpus(folder / "corpus.txt")
    return train_vocabulary([corpus], size, folder / "vocab", seed=0)


def sentiment_examples(count, seed=0):
    """`(sentences, labels)`: label 1 for sentences of positive words.

    Most words of a sentence carry its label, so that even the nearly
    uniform attention of a random model brings the signal to `[CLS]`:
    learnable in a few dozen steps from scratch.
    """
    rng = random.Random(seed)
    sentences, labels = [], []
    for _ in range(count):
        label = rng.randint(0, 1)
        words = [rng.choice(POSITIVE if label else NEGATIVE) for _ in range(rng.randint(2, 4))]
        words.insert(rng.randint(0, len(words)), rng.choice(FILLER))
        sentences.append(" ".join(words))
        labels.append(label)
    return sentences, labels


def write_sst2_tsv(path, count, seed=0):
    """A GLUE SST-2 layout file (header `sentence<TAB>label`) of synthetic data."""
    sentences, labels = sentiment_examples(count, seed)
    rows = ["sentence\tlabel"] + [f"{s} \t{y}" for s, y in zip(sentences, labels, strict=True)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


# === Export: references computed by the Keras models ===

EXPORT_SEQUENCE_LENGTH = 16
ATOL = 1e-5

# Texts of varied length: empty, one word, long (truncated), non-ASCII, a
# control character, typed special tokens.
VARIED_TEXTS = [
    "the quick brown fox",
    "",
    "a",
    " ".join(["depth layer token model serving"] * 12),
    "Zürich café naïve über 1,000 東京 🙂",
    "tab\there and\nnewline [SEP] [CLS]",
    "   ",
]


def preprocess(preprocessor, texts, text_pairs=None):
    """Eager preprocessing: a dict of int32 numpy features."""
    import tensorflow as tf

    if text_pairs is None:
        features = preprocessor(tf.constant(_strings(texts)))
    else:
        features = preprocessor(x=(tf.constant(_strings(texts)), tf.constant(_strings(text_pairs))))
    return {name: np.asarray(value) for name, value in features.items()}


def _strings(texts):
    return np.array([t if isinstance(t, bytes) else t.encode("utf-8") for t in texts], dtype=object)


def token_outputs(tokenizer, features):
    """The token outputs every signature adds to its head's."""
    vocabulary = np.array(tokenizer.get_vocabulary(), dtype=object)
    return {
        "token_ids": features["token_ids"],
        "padding_mask": features["padding_mask"],
        "token_pieces": vocabulary[features["token_ids"]],
    }


def backbone_reference(backbone, tokenizer, features):
    """What the backbone's signatures must return, from the Keras model."""
    outputs = backbone(features, training=False)
    return {
        "sequence_output": np.asarray(outputs["sequence_output"]),
        "pooled_output": np.asarray(outputs["pooled_output"]),
        "updates": np.asarray(outputs["updates"]),
        **token_outputs(tokenizer, features),
    }


def masked_lm_reference(pretrainer, tokenizer, features, top_k):
    """What a masked-LM signature must return, from the Keras pretrainer."""
    token_ids, mask = features["token_ids"], features["padding_mask"]
    is_mask = (token_ids == tokenizer.mask_token_id) & (mask != 0)
    rows = [np.flatnonzero(row) for row in is_mask]
    count = max([len(row) for row in rows] + [0])
    positions = np.full((len(rows), count), -1, dtype="int32")
    for index, row in enumerate(rows):
        positions[index, : len(row)] = row
    outputs = pretrainer({**features, "mask_positions": np.maximum(positions, 0)}, training=False)
    logits = np.asarray(outputs["mlm_logits"], dtype="float64")
    scores = np.exp(logits - logits.max(-1, keepdims=True))
    scores /= scores.sum(-1, keepdims=True)
    order = np.argsort(-scores, axis=-1, kind="stable")[..., :top_k]
    top_scores = np.take_along_axis(scores, order, axis=-1)
    real = positions[..., None] >= 0
    vocabulary = np.array(tokenizer.get_vocabulary(), dtype=object)
    return {
        "mask_positions": positions,
        "top_k_ids": np.where(real, order, -1),
        "top_k_scores": np.where(real, top_scores, 0.0),
        "top_k_pieces": np.where(real, vocabulary[order], ""),
        "updates": np.asarray(outputs["updates"]),
        **token_outputs(tokenizer, features),
    }


def assert_outputs_match(actual, expected, atol=ATOL):
    """Same keys, dtypes kinds and shapes; floats within `atol`, the rest equal."""
    assert sorted(actual) == sorted(expected), (sorted(actual), sorted(expected))
    for name, value in expected.items():
        got = actual[name]
        assert got.shape == np.shape(value), (name, got.shape, np.shape(value))
        if got.dtype.kind == "f":
            np.testing.assert_allclose(got, value, rtol=0, atol=atol, err_msg=name)
        elif got.dtype == object:
            decoded = (
                np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(got) if got.size else got
            )
            np.testing.assert_array_equal(decoded, np.asarray(value, dtype=object), err_msg=name)
        else:
            np.testing.assert_array_equal(got, value, err_msg=name)


# === The depth-analysis model, on disk ===

ANALYSIS_SEQUENCE_LENGTH = 32
ANALYSIS_MAX_LAYERS = 6
ANALYSIS_TEXTS = [
    "the fox and the cat lived near the old mill.",
    "one day a grey wolf came to the [MASK].",
    "the end",
]


@functools.cache
def analysis_setup():
    """The tiny model, its tokenizer and their files (built once, removed at exit)."""
    import keras_act
    from keras_act.export import export_saved_model
    from training.demo_corpus import write_demo_corpus
    from training.vocab import train_vocabulary

    root = tempfile.mkdtemp(prefix="keras_act_analysis_")
    atexit.register(shutil.rmtree, root, True)
    corpus = write_demo_corpus(os.path.join(root, "corpus.txt"), num_documents=40, seed=0)
    vocab = str(train_vocabulary([corpus], 100, os.path.join(root, "vocab"), seed=0, num_threads=1))
    tokenizer = keras_act.AlbertActTokenizer(proto=vocab)
    backbone = varied_depth_backbone(tokenizer.vocabulary_size())
    preset = os.path.join(root, "preset")
    backbone.save_to_preset(preset)
    tokenizer.save_to_preset(preset)
    saved_models = os.path.join(root, "saved_models", "tiny")
    version_dir = export_saved_model(
        backbone, tokenizer, saved_models, sequence_length=ANALYSIS_SEQUENCE_LENGTH, verify=False
    )
    return types.SimpleNamespace(
        root=root,
        corpus=corpus,
        vocab=vocab,
        tokenizer=tokenizer,
        backbone=backbone,
        preset=preset,
        saved_models=saved_models,
        version_dir=version_dir,
    )


def backbone_outputs(backbone, tokenizer, texts, sequence_length=ANALYSIS_SEQUENCE_LENGTH):
    """The preprocessed features of `texts` and the backbone's outputs, as numpy."""
    import keras_act

    preprocessor = keras_act.AlbertActPreprocessor(tokenizer, sequence_length=sequence_length)
    features = {k: np.asarray(v) for k, v in preprocessor(texts).items()}
    outputs = {k: np.asarray(v) for k, v in backbone(features, training=False).items()}
    return features, outputs


# === Running a command-line module as a user does ===


def child_environment(**extra):
    """The environment of a child process: TensorFlow backend, TF's info logs
    off, no `TF_CONFIG` of ours (plus `extra`)."""
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def free_port():
    """A free TCP port on 127.0.0.1 (for the workers of a local cluster)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_module(module, args, env_extra=None):
    """`python -m MODULE ARGS` from the repository root; its stdout.

    Runs in `child_environment(**env_extra)`; fails the test with the end of
    the output when the exit status is not 0.
    """
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        env=child_environment(**(env_extra or {})),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result.stdout


# === The documentation's bash blocks ===


def bash_blocks(text):
    """The ```bash blocks of a Markdown page."""
    return re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M)


def block_commands(block):
    """The commands of a bash block, comments dropped, continuation lines and
    multi-line quoted strings joined into one command each."""
    commands, pending = [], ""
    for line in block.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line + "\n"
        if pending.rstrip("\n").endswith("\\"):
            continue
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        commands.append(pending.rstrip("\n"))
        pending = ""
    assert not pending, f"unterminated command in a bash block: {pending!r}"
    return commands


# === Depth statistics of a hand-built batch ===

# Two packed examples, ALBERT ids: pad 0, [CLS] 2, [SEP] 3, [MASK] 4.
#   row 0: [CLS] 10 [MASK] 12 [SEP] 20 [SEP] pad pad
#          slot 2 is a target whose original is 11 ([MASK]/[MASK]),
#          slot 5 a target shown as itself (20: [MASK]/original).
#   row 1: [CLS] 30 31 [SEP] 99 [SEP] pad pad pad
#          slot 4 a target shown as a random token (99, original 32),
#          slot 1 an unused target slot (weight 0).
TOKEN_IDS = np.array([[2, 10, 4, 12, 3, 20, 3, 0, 0], [2, 30, 31, 3, 99, 3, 0, 0, 0]], np.int32)
PADDING_MASK = (np.arange(9) < np.array([[7], [6]])).astype(np.int32)
FEATURES = {
    "token_ids": TOKEN_IDS,
    "padding_mask": PADDING_MASK,
    "mask_positions": np.array([[2, 5], [4, 1]], np.int32),
}
TARGETS = {
    "mask_ids": np.array([[11, 20], [32, 30]], np.int32),
    "mask_weights": np.array([[1.0, 1.0], [1.0, 0.0]], np.float32),
}
UPDATES = np.array([[6, 1, 5, 2, 3, 4, 2, 0, 0], [5, 3, 1, 2, 6, 4, 0, 0, 0]], np.float32)
# Padding can hold anything in a model's raw output: it must be ignored.
UPDATES_WITH_PAD_NOISE = np.where(PADDING_MASK > 0, UPDATES, 9.0)
# How often each id occurs in a made-up corpus.
FREQUENCIES = np.zeros(100, np.int64)
FREQUENCIES[[10, 11, 12, 20, 30, 31, 32]] = [1, 5, 50, 500, 5000, 2, 20]


def hand_built_statistics(**kwargs):
    """`DepthStatistics` of the hand-built batch above (`kwargs`: its options)."""
    from keras_act.analysis import DepthStatistics

    statistics = DepthStatistics(token_frequencies=FREQUENCIES, **kwargs)
    statistics.update(FEATURES, TARGETS, UPDATES_WITH_PAD_NOISE)
    return statistics


# === Plain ALBERT checkpoints (Hugging Face layout), random, built here ===

TINY_ALBERT_CONFIG = dict(
    vocab_size=120,
    embedding_size=16,
    hidden_size=32,
    num_attention_heads=4,
    intermediate_size=64,
    num_hidden_layers=4,
    max_position_embeddings=32,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)
ALBERT_WEIGHT_FILES = {"safetensors": "model.safetensors", "bin": "pytorch_model.bin", "h5": "tf_model.h5"}


def random_plain_albert(pretraining=False, seed=0, **overrides):
    """A transformers `AlbertModel` (or `AlbertForPreTraining`), random weights.

    Biases and layer-norm parameters are drawn too (HF initialises them to 0
    and 1), so a weight in the wrong place changes the outputs.
    """
    import torch
    from transformers import AlbertConfig, AlbertForPreTraining, AlbertModel

    torch.manual_seed(seed)
    config = AlbertConfig(**{**TINY_ALBERT_CONFIG, **overrides})
    model = (AlbertForPreTraining if pretraining else AlbertModel)(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim == 1:
                parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def _tf_h5_name(key):
    """transformers' TF weight name of a PyTorch ALBERT key (None: tied, absent in TF)."""
    if key == "predictions.decoder.weight":
        return None
    # `albert_layer_groups.0` is `albert_layer_groups_._0` in TF.
    parts = re.sub(r"\.(\d+)(?=\.)", r"_#\1", key.removeprefix("albert.")).split(".")
    parts = [part.replace("#", "._") for part in parts]
    if not key.startswith(("predictions.", "sop_classifier.")):
        parts = ["albert", *parts]
    leaf, owner = parts[-1], parts[-2]
    if owner == "LayerNorm" or owner.endswith("layer_norm"):
        parts[-1] = {"weight": "gamma", "bias": "beta"}[leaf]
    elif owner in ("position_embeddings", "token_type_embeddings"):
        parts[-1] = "embeddings"
    elif owner != "word_embeddings" and leaf == "weight":
        parts[-1] = "kernel"
    return "/".join(parts) + ":0"


def write_tf_model_h5(state_dict, path, model_name):
    """Writes a state dict as transformers' TF `save_pretrained` does (Keras 2 HDF5).

    Same layout as the reference fixtures' `tf_model.h5`: one group per
    top-level layer (`albert`, `predictions`, `sop_classifier`) whose
    `weight_names` are `MODEL/albert/encoder/albert_layer_groups_._0/.../kernel:0`,
    kernels `[in, out]`.
    """
    import h5py

    layers = {}
    for key, value in state_dict.items():
        name = _tf_h5_name(key)
        if name is None or key.endswith(("position_ids", "token_type_ids")):
            continue
        array = value.detach().cpu().numpy()
        layers.setdefault(name.split("/")[0], []).append(
            (f"{model_name}/{name}", array.T if name.endswith("kernel:0") else array)
        )
    with h5py.File(path, "w") as file:
        file.attrs["layer_names"] = [name.encode() for name in layers]
        file.attrs["backend"] = b"tensorflow"
        file.attrs["keras_version"] = b"2.10.0"
        for layer, weights in layers.items():
            group = file.create_group(layer)
            group.attrs["weight_names"] = [name.encode() for name, _ in weights]
            for name, array in weights:
                group.create_dataset(name, data=array)


def save_plain_albert(model, folder, weight_format="safetensors"):
    """Saves a transformers ALBERT in `folder` as `model.safetensors`,
    `pytorch_model.bin` or `tf_model.h5` (with its `config.json`); returns `folder`."""
    folder = Path(folder)
    if weight_format == "h5":
        model.config.save_pretrained(folder)
        name = "tf_albert_for_pre_training" if "predictions" in str(model.state_dict().keys()) else "tf_albert_model"
        write_tf_model_h5(model.state_dict(), folder / "tf_model.h5", name)
    else:
        model.save_pretrained(folder, safe_serialization=weight_format == "safetensors")
    assert (folder / ALBERT_WEIGHT_FILES[weight_format]).is_file()
    return folder
