"""`AlbertAct`: one shared ALBERT block applied under per-token halting."""

import keras
import tensorflow as tf

from keras_act.checks import check_positive_int
from keras_act.layers.activations import get_activation
from keras_act.layers.albert_block import AlbertBlock
from keras_act.layers.capacity_ladder import DEFAULT_CAPACITY_LADDER, check_capacity_ladder
from keras_act.layers.depth_control import resolve_depth_budget
from keras_act.layers.fixed_depth_loop import fixed_depth_loop
from keras_act.layers.halting import HaltingDense, halting_step, record_iteration, should_continue
from keras_act.layers.initializers import albert_act_kernel_initializer, clone_initializer
from keras_act.layers.skip_halted_loop import skip_halted_loop
from keras_act.layers.static_skip_loop import static_skip_loop
from keras_act.layers.xla_context import compiled_by_xla

# Whether `skip_halted=None` takes the static skip path under XLA (else the
# dense loop there). A call in inference mode may be differentiated too (a
# tape around it), so this needs the static path's backward pass to compile
# with XLA: it does (tests/test_skip_path_training.py). See "Skipping halted
# tokens".
STATIC_PATH_DIFFERENTIATES_UNDER_XLA = True

# Per-iteration arrays returned by `call(..., return_iterations=True)`.
ITERATION_KEYS = (
    "iteration_states",
    "iteration_halting_logits",
    "iteration_update_weights",
    "iteration_halting_probability",
    "iteration_remainders",
    "iteration_updates",
)


@keras.saving.register_keras_serializable(package="keras_act")
class AlbertAct(keras.layers.Layer):
    """ALBERT's shared transformer block under Adaptive Computation Time.

    One post-layer-norm ALBERT block (`keras_act.layers.AlbertBlock`:
    self-attention, residual, layer norm, GELU feed-forward, residual, layer
    norm) is applied again and again inside
    a single `tf.while_loop`. After each application a halting unit (a sigmoid
    of a dense projection of the block output) adds a probability to each
    token's cumulative halting probability; a token halts when the cumulative
    would exceed `1 - act_epsilon`, and its last update uses the remainder.
    Each update mixes the block output into the state as
    `w * block_output + (1 - w) * state`. Every token so gets its own depth,
    capped at `max_layers`.

    The loop ends as soon as every real token has halted or reached the cap.
    Padding tokens start halted: they are never updated, never keep the loop
    running, and (being masked as attention keys) never change the outputs of
    real tokens. This is where we deliberately differ from the authors'
    PyTorch code, in which padding takes part in the loop; real tokens are
    unaffected.

    Halting probabilities, remainders and update counts are always float32
    (float64 in a float64 layer), also under mixed precision; the block runs
    in the layer's compute dtype.

    This layer implements Simoulin & Crabbé (2021), "How Many Layers and Why?
    An Analysis of the Model Depth in Transformers", after Graves (2016),
    "Adaptive Computation Time for Recurrent Neural Networks".

    Args:
        hidden_dim: int, size of the hidden states (the input's last axis).
        num_heads: int, number of attention heads.
        intermediate_dim: int, size of the feed-forward hidden layer.
        max_layers: int, cap on the number of block applications per token.
        act_epsilon: float, halting threshold is `1 - act_epsilon`.
            Defaults to `0.01`.
        activation: str, feed-forward activation. Defaults to `"gelu_new"`,
            the tanh-approximated GELU of ALBERT.
        dropout: float, dropout of the block (attention probabilities and
            hidden states). Defaults to `0.0`.
        layer_norm_epsilon: float, epsilon of the block's layer norms.
            Defaults to `1e-12`.
        kernel_initializer: initializer of the dense kernels. Defaults to
            `TruncatedNormal(stddev=0.02)`.
        bias_initializer: initializer of the block's biases. Defaults to
            `"zeros"`.
        halting_bias_initializer: initializer of the halting unit's bias.
            Defaults to `"zeros"` (every token starts with p close to 0.5).
        skip_halted: `None`, `True`, `False`, `"static"` or `"dynamic"`,
            whether the block runs on running tokens only, and how (see
            "Skipping halted tokens"). Defaults to `None`: automatic.
        fixed_depth: `None` or an int `n` >= 1. `None` (the default) is ACT.
            With `n`, halting is off and the layer is plain ALBERT: every
            real token gets exactly `n` updates, each replacing its state by
            the block output (`keras_act.layers.fixed_depth_loop`; the
            halting unit is not evaluated, `remainders` and
            `halting_probability` are 0, `updates` is `n` on real tokens, so
            the ponder cost is the constant `n`). `n` may exceed
            `max_layers` (the loop then runs up to `n` iterations; the
            `iteration_*` arrays have `max(max_layers, n)` rows). A depth
            budget's `max_layers` lowers `n` for a call; its threshold is
            ignored. Fixed depth always runs the dense loop (no token halts
            early, so there is nothing to skip). Settable on a built or
            trained layer: `layer.fixed_depth = 12` (and back to `None`);
            functions traced before keep the graph they traced.
        capacity_ladder: the buffer sizes of the static skip path, as
            fractions of batch x seq in (0, 1], one of them 1. Defaults to
            eight even steps, `(0.125, 0.25, ..., 1.0)`
            (`keras_act.layers.capacity_ladder`).
        **kwargs: other keyword arguments of `keras.layers.Layer`, including
            `name` and `dtype`.

    Call arguments:
        hidden_states: float tensor `[batch, seq, hidden_dim]`.
        padding_mask: optional bool or int tensor `[batch, seq]`, true/1 for
            real tokens.
        training: bool, whether dropout is active.
        return_iterations: bool, also return the state and halting
            accumulators after every iteration (for analysis and tests).
        skip_halted: `None`, `True`, `False`, `"static"` or `"dynamic"`;
            overrides the constructor's `skip_halted` for this call when not
            `None`.
        max_layers: `None`, an int in `[1, max_layers]` or an int32 scalar
            tensor: this call's cap on updates per token (a depth budget, see
            `keras_act.layers.depth_budget`). `None` takes the enclosing
            `depth_budget`'s, else the layer's `max_layers`.
        halting_threshold: `None`, a float in (0, 1] or a float scalar
            tensor: this call's halting threshold; lower halts earlier.
            `None` takes the enclosing `depth_budget`'s, else
            `1 - act_epsilon`. With both `None` and no `depth_budget`, the
            results are exactly those of the layer without budget. Tensor
            values out of range raise `tf.errors.InvalidArgumentError` when
            the graph runs (clipped under XLA; see
            `keras_act.layers.depth_control.resolve_depth_budget`).

    Skipping halted tokens:
        The dense path runs the block on every token at every iteration, so a
        batch costs (its largest depth) x (all tokens), like a fixed-depth
        model of that depth. The skip paths run the block and the halting
        unit on the running tokens only (attention against a cache of every
        token's keys and values; a halted token's keys and values are those
        of its final state), so the cost follows the sum of the tokens' own
        depths. Both give the dense path's `updates` and, up to float
        rounding (1e-5), its outputs; gradients flow through both.

        - `"dynamic"` (`keras_act.layers.skip_halted_loop`) carries the
          running tokens as a compact matrix whose size is known only at run
          time: eager, `tf.function` on CPU and GPU, exported SavedModels,
          in inference and in training (the block's own dropout layers act
          on the running tokens' rows); not under XLA (a `ValueError`).
        - `"static"` (`keras_act.layers.static_skip_loop`) gathers them at
          each iteration into a buffer whose size is the smallest of
          `capacity_ladder` that holds them, and scatters the results back:
          every shape is static, so it compiles with XLA (`jit_compile=True`,
          TPUs) and runs everywhere else too, in inference and in training
          (dropout on the gathered rows; the backward pass recomputes each
          iteration instead of keeping every branch's intermediates).

        `skip_halted=True` takes `"static"` under XLA and `"dynamic"`
        elsewhere. `skip_halted=None` (the default) takes, by measurement
        (hidden 256, cap 24, mean depth 9.7, batch 8 x 64 or 128, a loaded
        2-core CPU; speed vs the dense loop in the same context):

        - eager mode and `tf.function` without XLA, inference and training:
          `"dynamic"` (inference 2.7x, LAMB training step 1.74x; the static
          ladder there: 2.1x and 1.70x, and 3x the trace time);
        - under XLA: `"static"` (inference 1.85x, training step 1.59x;
          `STATIC_PATH_DIFFERENTIATES_UNDER_XLA`: its backward pass
          compiles with XLA too, and an inference call can be
          differentiated; it compiles a few times slower than the dense
          loop: one branch per capacity, forward and backward);
        - a trace whose compiler this TensorFlow build cannot tell (no
          XLA-context probe): as under XLA, paths that compile everywhere,
          so that a wrong guess never fails;
        - the dense path with `return_iterations=True` (analysis: the
          dense path records the halting logits of every token).

        `skip_halted=False` always
        takes the dense path. A quantized block (e.g. after
        `backbone.quantize("int8")`) always takes the dense path: asking it
        for a skip path is a `ValueError` (they read float kernels). With
        `return_iterations=True`, a skip path's `iteration_halting_logits`
        are NaN for tokens that did not run at that iteration.

    Returns:
        A dict with `sequence_output` `[batch, seq, hidden_dim]` and float32
        `[batch, seq]` tensors `updates` (how many times the block updated
        each token), `remainders` and `halting_probability` (all three 0 on
        padding). With `return_iterations=True`, also `num_iterations`
        (int32 scalar) and the `iteration_*` arrays `[max_layers, batch,
        seq(, hidden_dim)]`, of which the first `num_iterations` rows are
        filled.

    Example:

    >>> import keras_act
    >>> import numpy as np
    >>> layer = keras_act.AlbertAct(
    ...     hidden_dim=32, num_heads=4, intermediate_dim=64, max_layers=6
    ... )
    >>> outputs = layer(np.random.rand(2, 8, 32).astype("float32"))
    >>> outputs["updates"].shape
    TensorShape([2, 8])
    """

    def __init__(
        self,
        hidden_dim,
        num_heads,
        intermediate_dim,
        max_layers,
        act_epsilon=0.01,
        activation="gelu_new",
        dropout=0.0,
        layer_norm_epsilon=1e-12,
        kernel_initializer=None,
        bias_initializer="zeros",
        halting_bias_initializer="zeros",
        skip_halted=None,
        fixed_depth=None,
        capacity_ladder=DEFAULT_CAPACITY_LADDER,
        **kwargs,
    ):
        check_positive_int("hidden_dim", hidden_dim)
        check_positive_int("fixed_depth", fixed_depth, allow_none=True)
        check_positive_int("num_heads", num_heads)
        check_positive_int("intermediate_dim", intermediate_dim)
        check_positive_int("max_layers", max_layers)
        if hidden_dim % num_heads != 0:
            raise ValueError(
                "`hidden_dim` must be divisible by `num_heads`. Received: "
                f"hidden_dim={hidden_dim}, num_heads={num_heads}"
            )
        if not 0.0 < act_epsilon < 1.0:
            raise ValueError(
                f"`act_epsilon` must be in (0, 1). Received: act_epsilon={act_epsilon}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
        _check_skip_halted(skip_halted)
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.max_layers = max_layers
        self.act_epsilon = act_epsilon
        self.activation = activation
        get_activation(activation)  # fails early on an unknown name
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or albert_act_kernel_initializer()
        )
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.halting_bias_initializer = keras.initializers.get(halting_bias_initializer)
        self.skip_halted = skip_halted
        self.fixed_depth = fixed_depth
        self.capacity_ladder = check_capacity_ladder(capacity_ladder)
        self.supports_masking = False

    @property
    def fixed_depth(self):
        """`None` (ACT) or the number of updates every real token gets."""
        return self._fixed_depth

    @fixed_depth.setter
    def fixed_depth(self, value):
        check_positive_int("fixed_depth", value, allow_none=True)
        self._fixed_depth = value

    @property
    def loop_length(self):
        """The most iterations a call can run: `max(max_layers, fixed_depth)`."""
        return max(self.max_layers, self.fixed_depth or 0)

    def build(self, hidden_states_shape, padding_mask_shape=None):
        if hidden_states_shape[-1] != self.hidden_dim:
            raise ValueError(
                "The last axis of `hidden_states` must equal `hidden_dim`. "
                f"Received: hidden_states.shape={tuple(hidden_states_shape)}, "
                f"hidden_dim={self.hidden_dim}"
            )
        # The shared block and the halting unit are built once, here, so that
        # no variable is ever created inside the `tf.while_loop` body.
        self.transformer_block = AlbertBlock(
            num_heads=self.num_heads,
            intermediate_dim=self.intermediate_dim,
            activation=self.activation,
            dropout=self.dropout,
            layer_norm_epsilon=self.layer_norm_epsilon,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="transformer_block",
        )
        self.transformer_block.build(hidden_states_shape)
        # The halting unit computes in float32 (float64 in a float64 layer),
        # whatever the compute dtype of the block, and is never quantized.
        self.halting_dense = HaltingDense(
            "abc,cd->abd",
            output_shape=(None, 1),
            bias_axes="d",
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=self.halting_bias_initializer,
            dtype=self._halting_dtype,
            name="halting_dense",
        )
        self.halting_dense.build(hidden_states_shape)
        self.built = True

    def call(
        self,
        hidden_states,
        padding_mask=None,
        training=None,
        return_iterations=False,
        skip_halted=None,
        max_layers=None,
        halting_threshold=None,
    ):
        if self.fixed_depth is None:
            skip = self._resolve_skip_halted(skip_halted, training, return_iterations)
        shape = tf.shape(hidden_states)
        batch_size, seq_length = shape[0], shape[1]
        if padding_mask is None:
            padding_mask = tf.ones([batch_size, seq_length], dtype=tf.bool)
        else:
            padding_mask = tf.cast(padding_mask, tf.bool)
        halting_dtype = self._halting_dtype
        real_tokens = tf.cast(padding_mask, halting_dtype)
        # This call's depth budget (`keras_act.layers.depth_budget`): the
        # layer's own cap and `1 - act_epsilon` when none is given.
        threshold, depth_limit = resolve_depth_budget(
            max_layers, halting_threshold, self.loop_length, self.act_epsilon, halting_dtype
        )
        compute_dtype = self.compute_dtype

        # Padding starts halted: it is never updated and never keeps the loop
        # running.
        halting_probability = 1.0 - real_tokens
        remainders = tf.zeros_like(real_tokens)
        updates = tf.zeros_like(real_tokens)
        state = tf.cast(hidden_states, compute_dtype)
        if self.fixed_depth is not None:
            # Halting off (plain ALBERT); a depth budget can only lower n.
            depth_limit = tf.minimum(depth_limit, self.fixed_depth)
            outputs = fixed_depth_loop(
                self, state, padding_mask, depth_limit, training, return_iterations
            )
            if return_iterations:
                iterations = outputs.pop("iterations")
                outputs.update(dict(zip(ITERATION_KEYS, iterations, strict=True)))
            return outputs
        if skip:
            if skip == "static":
                outputs = static_skip_loop(
                    self,
                    state,
                    padding_mask,
                    threshold,
                    depth_limit,
                    training=_is_training(training),
                    return_iterations=return_iterations,
                )
            else:
                outputs = skip_halted_loop(
                    self,
                    state,
                    padding_mask,
                    threshold,
                    depth_limit,
                    return_iterations,
                    training=_is_training(training),
                )
            if return_iterations:
                iterations = outputs.pop("iterations")
                outputs.update(dict(zip(ITERATION_KEYS, iterations, strict=True)))
            for key in ("updates", "remainders", "halting_probability"):
                outputs[key] *= real_tokens
            return outputs

        def iterate(state, halting_probability, remainders, updates):
            block_output = self.transformer_block(
                state, padding_mask=padding_mask, training=training
            )
            halting_logits = tf.squeeze(
                self.halting_dense(tf.cast(block_output, halting_dtype)), axis=-1
            )
            (
                update_weights,
                updated,
                halting_probability,
                remainders,
                updates,
            ) = halting_step(
                tf.sigmoid(halting_logits),
                halting_probability,
                remainders,
                updates,
                threshold,
            )
            weights = update_weights[..., tf.newaxis]
            mixed = tf.cast(block_output, halting_dtype) * weights + tf.cast(
                state, halting_dtype
            ) * (1.0 - weights)
            # Tokens not updated keep their state bit for bit.
            state = tf.where(
                updated[..., tf.newaxis], tf.cast(mixed, compute_dtype), state
            )
            return (
                state,
                halting_probability,
                remainders,
                updates,
                (state, halting_logits, update_weights),
            )

        def condition(step, state, halting_probability, remainders, updates, *trace):
            return should_continue(halting_probability, updates, threshold, depth_limit)

        def body(step, state, halting_probability, remainders, updates, *trace):
            (
                state,
                halting_probability,
                remainders,
                updates,
                step_values,
            ) = iterate(state, halting_probability, remainders, updates)
            if trace:
                values = step_values + (halting_probability, remainders, updates)
                trace = tuple(
                    record_iteration(history, step, value)
                    for history, value in zip(trace, values, strict=True)
                )
            return (step + 1, state, halting_probability, remainders, updates) + tuple(
                trace
            )

        trace = ()
        if return_iterations:
            token_shape = [self.max_layers, batch_size, seq_length]
            trace = (tf.zeros(token_shape + [self.hidden_dim], halting_dtype),) + tuple(
                tf.zeros(token_shape, halting_dtype) for _ in ITERATION_KEYS[1:]
            )

        loop_vars = (
            tf.constant(0, tf.int32),
            state,
            halting_probability,
            remainders,
            updates,
        ) + trace
        results = tf.while_loop(
            condition,
            body,
            loop_vars,
            maximum_iterations=self.max_layers,
        )
        step, state, halting_probability, remainders, updates = results[:5]
        outputs = {
            "sequence_output": state,
            "updates": updates * real_tokens,
            "remainders": remainders * real_tokens,
            "halting_probability": halting_probability * real_tokens,
        }
        if return_iterations:
            outputs["num_iterations"] = step
            outputs.update(dict(zip(ITERATION_KEYS, results[5:], strict=True)))
        return outputs

    def _resolve_skip_halted(self, skip_halted, training, return_iterations):
        """The path of this call: `False` (dense), `"static"` or `"dynamic"`.

        See "Skipping halted tokens" in the class docstring.
        """
        if skip_halted is None:
            skip_halted = self.skip_halted
        _check_skip_halted(skip_halted)
        training = _is_training(training)
        # True (XLA), False (eager, or a trace not compiled by XLA) or None
        # (a trace whose compiler this TensorFlow build cannot tell).
        xla = compiled_by_xla()
        if skip_halted is None:
            if return_iterations or self._block_is_quantized():
                return False
            if xla is False:
                return "dynamic"
            # XLA, or a context that cannot be told: a path that compiles
            # everywhere.
            return "static" if STATIC_PATH_DIFFERENTIATES_UNDER_XLA else False
        if skip_halted is False:
            return False
        if self._block_is_quantized():
            raise ValueError(
                f"`skip_halted={skip_halted!r}` reads the block's float kernels, "
                "but the block is quantized (`quantize()` or a quantized dtype "
                "policy); quantized layers run on the dense path. Pass "
                "`skip_halted=None` (automatic) or `False`."
            )
        if skip_halted is True:
            skip_halted = "dynamic" if xla is False else "static"
        if skip_halted == "dynamic" and xla:
            raise ValueError(
                '`skip_halted="dynamic"` gathers a data-dependent number of '
                "tokens, which XLA (`jit_compile=True`, TPUs) cannot compile. "
                'Pass `skip_halted="static"`, `True`, `None` (automatic) or '
                "`False` under XLA. Received: skip_halted='dynamic' inside an "
                "XLA-compiled function"
            )
        return skip_halted

    def _block_is_quantized(self):
        return any(
            sublayer.quantization_mode is not None
            for sublayer in self.transformer_block._flatten_layers()
        )

    @property
    def _halting_dtype(self):
        # float32 under every policy, float64 for a float64 layer.
        return "float64" if self.dtype_policy.variable_dtype == "float64" else "float32"

    def compute_output_spec(self, hidden_states, padding_mask=None, **kwargs):
        token_shape = tuple(hidden_states.shape[:2])
        outputs = {
            "sequence_output": keras.KerasTensor(
                hidden_states.shape, dtype=self.compute_dtype
            ),
        }
        for key in ("updates", "remainders", "halting_probability"):
            outputs[key] = keras.KerasTensor(token_shape, dtype=self._halting_dtype)
        if kwargs.get("return_iterations"):
            outputs["num_iterations"] = keras.KerasTensor((), dtype="int32")
            outputs["iteration_states"] = keras.KerasTensor(
                (self.loop_length,) + tuple(hidden_states.shape), dtype=self._halting_dtype
            )
            for key in ITERATION_KEYS[1:]:
                outputs[key] = keras.KerasTensor(
                    (self.loop_length,) + token_shape, dtype=self._halting_dtype
                )
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "max_layers": self.max_layers,
                "act_epsilon": self.act_epsilon,
                "activation": self.activation,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "halting_bias_initializer": keras.initializers.serialize(
                    self.halting_bias_initializer
                ),
                "skip_halted": self.skip_halted,
                "fixed_depth": self.fixed_depth,
                "capacity_ladder": list(self.capacity_ladder),
            }
        )
        return config


def _check_skip_halted(value):
    if value is not None and not isinstance(value, bool) and value not in ("static", "dynamic"):
        raise ValueError(
            '`skip_halted` must be None (automatic), True, False, "static" or '
            f'"dynamic". Received: skip_halted={value!r}'
        )


def _is_training(training):
    """True unless `training` is statically None or False."""
    if training is None or isinstance(training, bool):
        return bool(training)
    value = tf.get_static_value(training)
    # A training flag only known at run time counts as training.
    return value is None or bool(value)
