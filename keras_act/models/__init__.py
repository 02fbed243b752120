"""Keras models (backbone, pre-training and fine-tuning tasks) of keras-act."""

# The `TYPE_CHECKING` imports below are read, not run: they name the public
# attributes (`__all__`), each imported from its module on first use
# (`keras_act.lazy_imports`), so importing the package imports none of them.
# ruff: noqa: F401

from typing import TYPE_CHECKING

from keras_act.lazy_imports import lazy_attributes

if TYPE_CHECKING:
    from keras_act.models.albert_act_backbone import AlbertActBackbone
    from keras_act.models.albert_act_multiple_choice import AlbertActMultipleChoice
    from keras_act.models.albert_act_multiple_choice_preprocessor import (
        AlbertActMultipleChoicePreprocessor,
    )
    from keras_act.models.albert_act_pretrainer import AlbertActPretrainer
    from keras_act.models.albert_act_question_answerer import (
        AlbertActQuestionAnswerer,
        SpanCrossEntropy,
    )
    from keras_act.models.albert_act_question_answerer_preprocessor import (
        AlbertActQuestionAnswererPreprocessor,
    )
    from keras_act.models.albert_act_task import AlbertActTask
    from keras_act.models.albert_act_text_classifier import AlbertActTextClassifier
    from keras_act.models.albert_act_text_classifier_preprocessor import (
        AlbertActTextClassifierPreprocessor,
    )
    from keras_act.models.albert_act_text_regressor import (
        AlbertActTextRegressor,
        StreamingPearsonCorrelation,
    )
    from keras_act.models.albert_act_token_classifier import AlbertActTokenClassifier
    from keras_act.models.albert_act_token_classifier_preprocessor import (
        AlbertActTokenClassifierPreprocessor,
    )

__getattr__, __dir__, __all__ = lazy_attributes(__name__, __file__)
