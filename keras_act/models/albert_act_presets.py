"""Architecture presets of the three ALBERT-ACT models of the paper.

The authors' models share ALBERT-base geometry and differ by the iteration cap
(`max_layers`) and by the weight tau of the ponder cost used in pre-training
(`ponder_weight`). No weights ship with these presets (nothing can be
downloaded); `from_preset` builds them with random weights. Converted
`asi/albert-act-*` checkpoints come from `keras_act.convert`.
"""

_ALBERT_BASE_GEOMETRY = {
    "vocabulary_size": 30000,
    "embedding_dim": 128,
    "hidden_dim": 768,
    "num_heads": 12,
    "intermediate_dim": 3072,
    "max_sequence_length": 512,
    "num_segments": 2,
    "act_epsilon": 0.01,
    "activation": "gelu_new",
    "dropout": 0.0,
}


def _preset(max_layers, ponder_weight, description):
    return {
        "metadata": {
            "description": description,
            "params": None,
            "path": "albert_act",
            "paper": "Simoulin & Crabbé (2021), ACL-SRW",
        },
        "config": dict(
            _ALBERT_BASE_GEOMETRY,
            max_layers=max_layers,
            ponder_weight=ponder_weight,
        ),
    }


backbone_presets = {
    "albert_act_tiny": _preset(
        6, 1e-3, "ALBERT-ACT tiny: ALBERT-base geometry, at most 6 iterations, tau=1e-3."
    ),
    "albert_act_small": _preset(
        12, 5e-4, "ALBERT-ACT small: ALBERT-base geometry, at most 12 iterations, tau=5e-4."
    ),
    "albert_act_base": _preset(
        24, 2.5e-4, "ALBERT-ACT base: ALBERT-base geometry, at most 24 iterations, tau=2.5e-4."
    ),
}
