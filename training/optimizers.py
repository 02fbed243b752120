"""Optimizers and learning-rate schedules for pre-training and fine-tuning."""

import keras

from keras_act.models.albert_act_task import NO_WEIGHT_DECAY

OPTIMIZERS = ("lamb", "adamw")


@keras.saving.register_keras_serializable(package="keras_act")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak_learning_rate`, then polynomial decay.

    With `power=1` the decay is linear (BERT, ALBERT); the learning rate
    reaches `end_learning_rate` at `total_steps`.

    Args:
        peak_learning_rate: float.
        warmup_steps: int, steps of linear warm-up from 0.
        total_steps: int, the last step of the decay.
        end_learning_rate: float. Defaults to 0.
        power: float, 1 for linear decay. Defaults to 1.

    Example:

    >>> schedule = WarmupDecay(1e-3, warmup_steps=10, total_steps=100)
    >>> float(schedule(5))
    0.0005
    """

    def __init__(self, peak_learning_rate, warmup_steps, total_steps, end_learning_rate=0.0, power=1.0):
        if total_steps <= 0 or warmup_steps < 0:
            raise ValueError(
                f"Need total_steps > 0 and warmup_steps >= 0; got {total_steps}, {warmup_steps}."
            )
        self.peak_learning_rate = peak_learning_rate
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.end_learning_rate = end_learning_rate
        self.power = power

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup = keras.ops.cast(max(self.warmup_steps, 1), "float32")
        decay_steps = keras.ops.cast(max(self.total_steps - self.warmup_steps, 1), "float32")
        warm = self.peak_learning_rate * step / warmup
        progress = keras.ops.clip((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        decayed = (self.peak_learning_rate - self.end_learning_rate) * (
            1.0 - progress
        ) ** self.power + self.end_learning_rate
        return keras.ops.where(step < self.warmup_steps, warm, decayed)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
            "end_learning_rate": self.end_learning_rate,
            "power": self.power,
        }


def create_optimizer(
    name,
    learning_rate,
    total_steps,
    warmup_steps=0,
    weight_decay=0.01,
    power=1.0,
    loss_scaling=False,
):
    """Creates Keras's LAMB or AdamW with a warm-up + decay schedule.

    Gradient clipping is done by the training loop (after the cross-replica
    reduction), not by the optimizer. Layer norms and biases are excluded
    from weight decay, as in BERT and ALBERT.

    Args:
        name: `"lamb"` or `"adamw"`.
        learning_rate: float, the peak learning rate.
        total_steps: int.
        warmup_steps: int.
        weight_decay: float.
        power: float, 1 for linear decay.
        loss_scaling: bool, wrap it in a `keras.optimizers.LossScaleOptimizer`
            (dynamic loss scaling: float16 gradients underflow without it).

    Returns:
        A `keras.optimizers.Optimizer`.
    """
    schedule = WarmupDecay(learning_rate, warmup_steps, total_steps, power=power)
    if name == "lamb":
        optimizer = keras.optimizers.Lamb(learning_rate=schedule, weight_decay=weight_decay)
    elif name == "adamw":
        optimizer = keras.optimizers.AdamW(
            learning_rate=schedule, weight_decay=weight_decay, epsilon=1e-6
        )
    else:
        raise ValueError(f"Unknown optimizer {name!r}; expected one of {OPTIMIZERS}.")
    optimizer.exclude_from_weight_decay(var_names=list(NO_WEIGHT_DECAY))
    if loss_scaling:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
