"""Text and GLUE examples from TensorFlow Datasets, by name.

`--tfds wikipedia/20230601.en` (article text), `--tfds glue/sst2` (sentences)
and any other TFDS dataset with a text feature. TFDS downloads and prepares
the data on first use (network needed then); tests run this code on
`tfds.testing.mock_data`.
"""

import numpy as np

# Text features tried in order when none is named.
TEXT_KEYS = ("text", "sentence", "document", "article", "content", "question")


def load_tfds(name, split="train", data_dir=None):
    """`tfds.load(name, split)` with a clear error for an unknown name."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # DatasetNotFoundError and friends
        raise ValueError(f"Unknown TFDS dataset {name!r}: {error}") from error
    try:
        builder.download_and_prepare()
    except Exception as error:
        raise ValueError(
            f"Could not prepare TFDS dataset {name!r} (it downloads on first use): {error}"
        ) from error
    return builder.as_dataset(split=split, shuffle_files=False), builder.info


def documents_from_tfds(name, split="train", data_dir=None, text_key=None, max_examples=None):
    """Reads a TFDS text dataset as documents (lists of sentences).

    Args:
        name: str, e.g. `"wikipedia/20230601.en"` or `"glue/sst2"`.
        split: str.
        data_dir: optional TFDS data directory.
        text_key: the text feature; by default the first of `TEXT_KEYS`
            present.
        max_examples: int, read at most this many examples.

    Returns:
        A list of documents, each a list of sentence strings.

    Raises:
        ValueError: unknown dataset, no text feature, or no usable text.
    """
    from keras_act.data.text_corpus import split_sentences

    dataset, info = load_tfds(name, split, data_dir)
    features = list(info.features.keys()) if hasattr(info.features, "keys") else []
    key = text_key or next((k for k in TEXT_KEYS if k in features), None)
    if key is None or key not in features:
        raise ValueError(
            f"TFDS dataset {name!r} has no text feature among {features} "
            f"(looked for {text_key or TEXT_KEYS})."
        )
    if max_examples:
        dataset = dataset.take(max_examples)
    documents = []
    for example in dataset.as_numpy_iterator():
        value = example[key]
        text = value.decode("utf8", errors="replace") if isinstance(value, bytes) else str(value)
        sentences = [s for line in text.splitlines() for s in split_sentences(line)]
        if sentences:
            documents.append(sentences)
    if not documents:
        raise ValueError(f"TFDS dataset {name!r} ({split}) has no usable text in {key!r}.")
    return documents


def labelled_examples_from_tfds(name, split, data_dir=None, text_keys=None, label_key="label"):
    """Reads a TFDS classification dataset (e.g. `glue/sst2`).

    Returns:
        `(texts, labels)`: a list of tuples of strings (one or two texts per
        example) and a numpy array of labels.
    """
    dataset, info = load_tfds(name, split, data_dir)
    features = list(info.features.keys())
    if text_keys is None:
        pairs = (("sentence1", "sentence2"), ("question1", "question2"), ("question", "sentence"), ("premise", "hypothesis"))
        text_keys = next((p for p in pairs if all(k in features for k in p)), None)
        text_keys = text_keys or tuple(k for k in TEXT_KEYS if k in features)[:1]
    if not text_keys or label_key not in features:
        raise ValueError(f"TFDS dataset {name!r} has no text/label features among {features}.")
    texts, labels = [], []
    for example in dataset.as_numpy_iterator():
        texts.append(tuple(example[k].decode("utf8", errors="replace") for k in text_keys))
        labels.append(example[label_key])
    return texts, np.asarray(labels)
