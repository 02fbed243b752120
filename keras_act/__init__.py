"""keras-act: ALBERT-ACT (ALBERT with Adaptive Computation Time) for Keras 3.

Implements Simoulin & Crabbé (2021), "How Many Layers and Why? An Analysis of
the Model Depth in Transformers", on TensorFlow.
"""

import os

# keras-act runs on the TensorFlow backend of Keras 3.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# ruff: noqa: E402
from keras_act import convert
from keras_act.layers.albert_act import AlbertAct
from keras_act.layers.albert_block import AlbertBlock
from keras_act.models.albert_act_backbone import AlbertActBackbone
from keras_act.models.albert_act_multiple_choice import AlbertActMultipleChoice
from keras_act.models.albert_act_multiple_choice_preprocessor import (
    AlbertActMultipleChoicePreprocessor,
)
from keras_act.models.albert_act_pretrainer import AlbertActPretrainer
from keras_act.models.albert_act_question_answerer import AlbertActQuestionAnswerer
from keras_act.models.albert_act_question_answerer_preprocessor import (
    AlbertActQuestionAnswererPreprocessor,
)
from keras_act.models.albert_act_text_classifier import AlbertActTextClassifier
from keras_act.models.albert_act_text_classifier_preprocessor import (
    AlbertActTextClassifierPreprocessor,
)
from keras_act.models.albert_act_text_regressor import AlbertActTextRegressor
from keras_act.models.albert_act_token_classifier import AlbertActTokenClassifier
from keras_act.models.albert_act_token_classifier_preprocessor import (
    AlbertActTokenClassifierPreprocessor,
)
from keras_act.tokenizers.albert_act_preprocessor import (
    AlbertActPairPreprocessor,
    AlbertActPreprocessor,
)
from keras_act.tokenizers.albert_act_tokenizer import AlbertActTokenizer

__version__ = "0.1.0"

__all__ = [
    "AlbertAct",
    "AlbertActBackbone",
    "AlbertActMultipleChoice",
    "AlbertActMultipleChoicePreprocessor",
    "AlbertActPairPreprocessor",
    "AlbertActPreprocessor",
    "AlbertActPretrainer",
    "AlbertActQuestionAnswerer",
    "AlbertActQuestionAnswererPreprocessor",
    "AlbertActTextClassifier",
    "AlbertActTextClassifierPreprocessor",
    "AlbertActTextRegressor",
    "AlbertActTokenClassifier",
    "AlbertActTokenClassifierPreprocessor",
    "AlbertActTokenizer",
    "AlbertBlock",
    "__version__",
    "convert",
]
