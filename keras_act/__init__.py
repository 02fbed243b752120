"""keras-act: ALBERT-ACT (ALBERT with Adaptive Computation Time) for Keras 3.

Implements Simoulin & Crabbé (2021), "How Many Layers and Why? An Analysis of
the Model Depth in Transformers", on TensorFlow.
"""

import os

# keras-act runs on the TensorFlow backend of Keras 3.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from keras_act import convert  # noqa: E402
from keras_act.layers.albert_act import AlbertAct  # noqa: E402
from keras_act.layers.albert_block import AlbertBlock  # noqa: E402
from keras_act.models.albert_act_backbone import AlbertActBackbone  # noqa: E402
from keras_act.models.albert_act_pretrainer import AlbertActPretrainer  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "AlbertAct",
    "AlbertActBackbone",
    "AlbertActPretrainer",
    "AlbertBlock",
    "__version__",
    "convert",
]

# Tokenization and preprocessing (issue 3).
from keras_act.tokenizers.albert_act_preprocessor import (  # noqa: E402
    AlbertActPairPreprocessor,
    AlbertActPreprocessor,
)
from keras_act.tokenizers.albert_act_tokenizer import AlbertActTokenizer  # noqa: E402

__all__ += ["AlbertActPairPreprocessor", "AlbertActPreprocessor", "AlbertActTokenizer"]
