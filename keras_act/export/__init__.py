"""SavedModel export of keras-act models for TensorFlow Serving.

`export_saved_model(model, preprocessor_or_tokenizer, "saved_models/NAME")`
writes `saved_models/NAME/<version>/` with the tokenizer in the graph: raw
text in, predictions and per-token depth (`updates`) out. The graph holds
core TensorFlow and TensorFlow Text ops only, the ops of the official model
server. See `docs/serving.md`.
"""

from keras_act.export.archive import (
    build_export_archive,
    export_saved_model,
    resolve_preprocessor,
    run_warmup_requests,
)
from keras_act.export.atomic import list_versions, next_version, write_version
from keras_act.export.serving_heads import (
    BackboneHead,
    ClassifierHead,
    MaskedLMHead,
    ServingHead,
    register_serving_head,
    serving_head_for,
)
from keras_act.export.signatures import TEXT_SIGNATURE, TOKEN_IDS_SIGNATURE
from keras_act.export.task_heads import (
    MultipleChoiceHead,
    QuestionAnswererHead,
    RegressorHead,
    TokenClassifierHead,
)
from keras_act.export.warmup import models_config_text, predict_request, read_warmup_file

__all__ = [
    "TEXT_SIGNATURE",
    "TOKEN_IDS_SIGNATURE",
    "BackboneHead",
    "ClassifierHead",
    "MaskedLMHead",
    "MultipleChoiceHead",
    "QuestionAnswererHead",
    "RegressorHead",
    "ServingHead",
    "TokenClassifierHead",
    "build_export_archive",
    "export_saved_model",
    "list_versions",
    "models_config_text",
    "next_version",
    "predict_request",
    "read_warmup_file",
    "register_serving_head",
    "resolve_preprocessor",
    "run_warmup_requests",
    "serving_head_for",
    "write_version",
]
