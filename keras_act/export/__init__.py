"""SavedModel export of keras-act models for TensorFlow Serving.

`export_saved_model(model, preprocessor_or_tokenizer, "saved_models/NAME")`
writes `saved_models/NAME/<version>/` with the tokenizer in the graph: raw
text in, predictions and per-token depth (`updates`) out. The graph holds
core TensorFlow and TensorFlow Text ops only, the ops of the official model
server. See `docs/serving.md`.
"""

# The `TYPE_CHECKING` imports below are read, not run: they name the public
# attributes (`__all__`), each imported from its module on first use
# (`keras_act.lazy_imports`), so importing the package imports none of them.
# ruff: noqa: F401

from typing import TYPE_CHECKING

from keras_act.lazy_imports import lazy_attributes

if TYPE_CHECKING:
    from keras_act.export.archive import (
        budget_inputs_for,
        build_export_archive,
        export_saved_model,
        resolve_preprocessor,
        run_warmup_requests,
    )
    from keras_act.export.atomic import list_versions, next_version, write_version
    from keras_act.export.heads import (
        BackboneHead,
        ClassifierHead,
        MaskedLMHead,
        MultipleChoiceHead,
        QuestionAnswererHead,
        RegressorHead,
        ServingHead,
        TokenClassifierHead,
        register_serving_head,
        serving_head_for,
    )
    from keras_act.export.signatures import TEXT_SIGNATURE, TOKEN_IDS_SIGNATURE
    from keras_act.export.warmup import models_config_text, predict_request, read_warmup_file

__getattr__, __dir__, __all__ = lazy_attributes(__name__, __file__)
