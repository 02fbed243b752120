"""Keras models (backbone, pre-training and fine-tuning tasks) of keras-act."""

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

__all__ = [
    "AlbertActBackbone",
    "AlbertActMultipleChoice",
    "AlbertActMultipleChoicePreprocessor",
    "AlbertActPretrainer",
    "AlbertActQuestionAnswerer",
    "AlbertActQuestionAnswererPreprocessor",
    "AlbertActTask",
    "AlbertActTextClassifier",
    "AlbertActTextClassifierPreprocessor",
    "AlbertActTextRegressor",
    "AlbertActTokenClassifier",
    "AlbertActTokenClassifierPreprocessor",
    "SpanCrossEntropy",
    "StreamingPearsonCorrelation",
]
