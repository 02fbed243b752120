"""Shared data of the task and fine-tuning tests: a tiny vocabulary, tiny
backbones and small learnable synthetic tasks (no ../shared needed).

Holds no tests; `test_tasks.py` and `test_finetune.py` import it.
"""

import random

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


def tiny_backbone(vocabulary_size, max_layers=3, **overrides):
    import keras_act

    config = dict(
        vocabulary_size=vocabulary_size,
        embedding_dim=16,
        hidden_dim=32,
        num_heads=4,
        intermediate_dim=64,
        max_layers=max_layers,
        max_sequence_length=64,
    )
    config.update(overrides)
    return keras_act.AlbertActBackbone(**config)


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
