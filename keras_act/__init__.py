"""keras-act: ALBERT-ACT (ALBERT with Adaptive Computation Time) for Keras 3.

Implements Simoulin & Crabbé (2021), "How Many Layers and Why? An Analysis of
the Model Depth in Transformers", on TensorFlow.

The public names are imported on first use (`keras_act.AlbertActBackbone`
imports TensorFlow and keras-hub then), so TensorFlow-free modules such as
`keras_act.checks` or `keras_act.data.text_corpus` import alone. Keras still
finds keras-act's classes when it loads a saved model: they are registered as
soon as Keras is imported (`keras_act.keras_registration`).
"""

# The `TYPE_CHECKING` imports below are read, not run: they name the public
# attributes (`__all__`), each imported from its module on first use
# (`keras_act.lazy_imports`), so importing the package imports none of them.
# ruff: noqa: F401

import os
from typing import TYPE_CHECKING

from keras_act import keras_registration
from keras_act.lazy_imports import lazy_attributes

# keras-act runs on the TensorFlow backend of Keras 3.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"

if TYPE_CHECKING:
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

__getattr__, __dir__, __all__ = lazy_attributes(__name__, __file__)
__all__ = sorted([*__all__, "__version__"])

keras_registration.install()
