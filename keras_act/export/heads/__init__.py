"""Serving heads: what each kind of model returns from its exported signatures.

One head per file, on the shared base `ServingHead` (`base.py`):

| model | head | file |
| --- | --- | --- |
| `AlbertActBackbone` | `BackboneHead` | `backbone.py` |
| `AlbertActPretrainer` | `MaskedLMHead` | `masked_lm.py` |
| `AlbertActTextClassifier`, any model of logits `[batch, classes]` | `ClassifierHead` | `classifier.py` |
| `AlbertActTextRegressor` | `RegressorHead` | `regressor.py` |
| `AlbertActTokenClassifier` | `TokenClassifierHead` | `token_classifier.py` |
| `AlbertActQuestionAnswerer` | `QuestionAnswererHead` | `question_answerer.py` |
| `AlbertActMultipleChoice` | `MultipleChoiceHead` | `multiple_choice.py` |

Heads are looked up by model class through a registry (`registry.py`),
filled here with the built-in heads as soon as any head module is imported.
Supporting a new task type is one call:

```python
keras_act.export.register_serving_head(MyTask, ClassifierHead)
```

A head can also define the raw-text signature's inputs
(`text_input_names`) and answer in terms of the text (`serve_texts`): the
token classifier labels the whitespace-separated words of `text`, the
question answerer returns the answer's words from `context`.
"""

from keras_act.export.heads.backbone import BackboneHead
from keras_act.export.heads.base import ServingHead
from keras_act.export.heads.classifier import ClassifierHead
from keras_act.export.heads.masked_lm import MaskedLMHead
from keras_act.export.heads.multiple_choice import MultipleChoiceHead
from keras_act.export.heads.question_answerer import QuestionAnswererHead
from keras_act.export.heads.registry import (
    register_serving_head,
    registered_head_class,
    serving_head_for,
)
from keras_act.export.heads.regressor import RegressorHead
from keras_act.export.heads.token_classifier import TokenClassifierHead
from keras_act.models.albert_act_backbone import AlbertActBackbone
from keras_act.models.albert_act_multiple_choice import AlbertActMultipleChoice
from keras_act.models.albert_act_pretrainer import AlbertActPretrainer
from keras_act.models.albert_act_question_answerer import AlbertActQuestionAnswerer
from keras_act.models.albert_act_text_regressor import AlbertActTextRegressor
from keras_act.models.albert_act_token_classifier import AlbertActTokenClassifier

register_serving_head(AlbertActBackbone, BackboneHead)
register_serving_head(AlbertActPretrainer, MaskedLMHead)
register_serving_head(AlbertActTextRegressor, RegressorHead)
register_serving_head(AlbertActTokenClassifier, TokenClassifierHead)
register_serving_head(AlbertActQuestionAnswerer, QuestionAnswererHead)
register_serving_head(AlbertActMultipleChoice, MultipleChoiceHead)

__all__ = [
    "BackboneHead",
    "ClassifierHead",
    "MaskedLMHead",
    "MultipleChoiceHead",
    "QuestionAnswererHead",
    "RegressorHead",
    "ServingHead",
    "TokenClassifierHead",
    "register_serving_head",
    "registered_head_class",
    "serving_head_for",
]
