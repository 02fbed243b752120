"""Shared pieces of the depth-analysis tests: a tiny model with varied depth, on disk.

`analysis_setup()` is built once per test process (cached): a SentencePiece
vocabulary trained on a small generated corpus, a small `AlbertActBackbone`
whose halting unit gives tokens between 1 and 6 updates, and the model saved
as a preset directory and as an exported SavedModel.
"""

import atexit
import functools
import os
import shutil
import tempfile
import types

import numpy as np

SEQUENCE_LENGTH = 32
MAX_LAYERS = 6
TEXTS = [
    "the fox and the cat lived near the old mill.",
    "one day a grey wolf came to the [MASK].",
    "the end",
]


def tiny_backbone(vocabulary_size, seed=1):
    """A small backbone (hidden 32, cap 6) whose tokens use 1 to 6 layers.

    A random initialisation gives every token a halting probability close
    to 0.5 (2 or 3 updates); the halting unit is redrawn (kernel N(0, 1),
    bias -1.5) so that depths vary from token to token, as in the authors'
    reference fixtures.
    """
    import keras

    import keras_act

    keras.utils.set_random_seed(seed)
    backbone = keras_act.AlbertActBackbone(
        vocabulary_size=vocabulary_size,
        embedding_dim=16,
        hidden_dim=32,
        num_heads=4,
        intermediate_dim=64,
        max_layers=MAX_LAYERS,
        max_sequence_length=64,
    )
    halting = backbone.get_layer("albert_act").halting_dense
    rng = np.random.default_rng(seed)
    halting.kernel.assign(rng.normal(0.0, 1.0, halting.kernel.shape).astype("float32"))
    halting.bias.assign(np.full(halting.bias.shape, -1.5, "float32"))
    return backbone


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
    backbone = tiny_backbone(tokenizer.vocabulary_size())
    preset = os.path.join(root, "preset")
    backbone.save_to_preset(preset)
    tokenizer.save_to_preset(preset)
    saved_models = os.path.join(root, "saved_models", "tiny")
    version_dir = export_saved_model(
        backbone, tokenizer, saved_models, sequence_length=SEQUENCE_LENGTH, verify=False
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


def backbone_outputs(backbone, tokenizer, texts, sequence_length=SEQUENCE_LENGTH):
    """The preprocessed features of `texts` and the backbone's outputs, as numpy."""
    import keras_act

    preprocessor = keras_act.AlbertActPreprocessor(tokenizer, sequence_length=sequence_length)
    features = {k: np.asarray(v) for k, v in preprocessor(texts).items()}
    outputs = {k: np.asarray(v) for k, v in backbone(features, training=False).items()}
    return features, outputs
