"""The demo corpus: short stories the project generates itself (no download).

Each document is a little story about animals in a village, told in order
("first ... then ... later ... at last ..."), so that both pre-training tasks
have something to learn: which word fits a masked slot (agreement between a
character, what it does and where) and whether two halves of a story are in
their original order (time words and the story's progression). It is
deterministic for a given seed and written as plain text: one sentence per
line, documents separated by blank lines, the format of `--corpus` files.
"""

import numpy as np

from training.run_files import write_text_atomically

ANIMALS = (
    "fox", "bear", "owl", "rabbit", "wolf", "deer", "otter", "badger", "heron",
    "mouse", "goat", "crow", "beaver", "lynx", "swan", "hedgehog",
)
COLOURS = ("red", "brown", "grey", "white", "black", "golden", "silver", "spotted")
PLACES = (
    "river", "forest", "meadow", "hill", "garden", "bridge", "valley", "mill",
    "lake", "orchard", "barn", "cave",
)
THINGS = (
    ("apple", "ate"), ("berry", "ate"), ("fish", "caught"), ("stone", "carried"),
    ("song", "sang"), ("letter", "wrote"), ("map", "read"), ("boat", "built"),
    ("nest", "built"), ("lantern", "lit"), ("basket", "carried"), ("story", "told"),
)
WEATHER = ("the sun was warm", "rain was falling", "snow covered the ground",
           "a strong wind blew", "fog hid the hills", "the sky was clear")
TIME_WORDS = ("then", "after that", "later", "soon")
FEELINGS = ("happy", "tired", "hungry", "curious", "proud", "sleepy", "calm")


def _story(rng, number):
    hero = ANIMALS[rng.integers(len(ANIMALS))]
    friend = ANIMALS[rng.integers(len(ANIMALS))]
    while friend == hero:
        friend = ANIMALS[rng.integers(len(ANIMALS))]
    colour = COLOURS[rng.integers(len(COLOURS))]
    home = PLACES[rng.integers(len(PLACES))]
    sentences = [
        f"once upon a time a {colour} {hero} lived near the {home} .",
        f"on the first morning {WEATHER[rng.integers(len(WEATHER))]} .",
        f"first the {hero} woke up and felt {FEELINGS[rng.integers(len(FEELINGS))]} .",
    ]
    for day in range(2 + rng.integers(4)):
        thing, verb = THINGS[rng.integers(len(THINGS))]
        place = PLACES[rng.integers(len(PLACES))]
        when = TIME_WORDS[rng.integers(len(TIME_WORDS))]
        who = hero if rng.random() < 0.6 else friend
        sentences.append(f"{when} the {who} went to the {place} .")
        sentences.append(f"there the {who} {verb} a {thing} with the {friend if who == hero else hero} .")
        if rng.random() < 0.5:
            sentences.append(f"on day {day + 2} {WEATHER[rng.integers(len(WEATHER))]} .")
    sentences.append(f"at last the {hero} went back to the {home} and slept .")
    sentences.append("and that was the end of the story .")
    return sentences


def generate_demo_documents(num_documents=1500, seed=0):
    """Generates the demo corpus as a list of documents (lists of sentences).

    Args:
        num_documents: int, number of stories.
        seed: int, random seed; the corpus is a pure function of it.

    Returns:
        A list of documents, each a list of sentence strings.

    Example:

    >>> documents = generate_demo_documents(2, seed=0)
    >>> documents[0][0].startswith("once upon a time")
    True
    """
    rng = np.random.default_rng(seed)
    return [_story(rng, number) for number in range(num_documents)]


def write_demo_corpus(path, num_documents=1500, seed=0):
    """Writes the demo corpus to `path` (one sentence a line, blank line between
    documents) and returns `path`."""
    documents = generate_demo_documents(num_documents, seed)
    text = "\n\n".join("\n".join(document) for document in documents) + "\n"
    return write_text_atomically(path, text)


POSITIVE = ("happy", "proud", "calm", "cheerful", "glad", "delighted")
NEGATIVE = ("sad", "tired", "angry", "hungry", "lonely", "worried")


def write_demo_sentiment_tsv(path, num_examples=800, seed=0):
    """Writes a small sentiment task about the stories, in the GLUE SST-2
    layout (`sentence<TAB>label`, header line): label 1 when the animal
    feels good. It lets fine-tuning run offline (`--task sst2`).

    Args:
        path: str, the TSV file to write.
        num_examples: int.
        seed: int.

    Returns:
        `path`.
    """
    rng = np.random.default_rng(seed)
    rows = ["sentence\tlabel"]
    for _ in range(num_examples):
        label = int(rng.random() < 0.5)
        feeling = (POSITIVE if label else NEGATIVE)[rng.integers(6)]
        animal = ANIMALS[rng.integers(len(ANIMALS))]
        place = PLACES[rng.integers(len(PLACES))]
        thing, verb = THINGS[rng.integers(len(THINGS))]
        if rng.random() < 0.5:
            sentence = f"the {animal} {verb} a {thing} near the {place} and felt {feeling} ."
        else:
            sentence = f"near the {place} the {feeling} {animal} {verb} a {thing} ."
        rows.append(f"{sentence}\t{label}")
    return write_text_atomically(path, "\n".join(rows) + "\n")
