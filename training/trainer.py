"""A custom distributed training loop, the same under every strategy.

`strategy.run` inside a `tf.function`, as in the TF Model Garden: Keras 3's
`fit` has known problems with `MultiWorkerMirroredStrategy`. Each replica
computes gradients over `accumulation_steps` micro-batches (optionally
XLA-compiled), the gradients are summed across replicas, clipped by global
norm, and applied. Losses are per-example sums divided by the global batch
size (every example of an optimizer step: all replicas, all micro-batches),
so one device, N replicas and k accumulated micro-batches with the same
global batch compute the same update: the gradient of the mean loss over
the global batch.
"""

import os
import shutil
import time
import warnings

import keras
import tensorflow as tf

from training.strategies import is_chief


def distribute_dataset(strategy, examples_fn, global_batch_size, accumulation_steps=1, skip_steps=0):
    """Batches and distributes an endless, deterministic example dataset.

    Each replica receives `[accumulation_steps, per_replica_batch, ...]`
    tensors, `per_replica_batch = global_batch_size / (accumulation_steps *
    replicas)`. `skip_steps` training steps' worth of batches are skipped, so a
    resumed run continues exactly where the killed one stopped.

    Args:
        strategy: a `tf.distribute.Strategy`.
        examples_fn: callable returning an unbatched `tf.data.Dataset` that
            yields the same examples in the same order at every call.
        global_batch_size: int, examples per optimizer step on all replicas
            and micro-batches together.
        accumulation_steps: int, micro-batches per optimizer step.
        skip_steps: int, optimizer steps already done.

    Returns:
        A distributed dataset.

    Raises:
        ValueError: `global_batch_size` is not divisible by
            `accumulation_steps` times the replicas.
    """
    replicas = strategy.num_replicas_in_sync
    if global_batch_size % accumulation_steps:
        raise ValueError(
            f"The global batch size {global_batch_size} is not divisible by the "
            f"{accumulation_steps} accumulation steps."
        )
    micro_batch = global_batch_size // accumulation_steps
    if micro_batch % replicas:
        what = (
            f"The global batch size {global_batch_size}"
            if accumulation_steps == 1
            else f"The micro-batch size {micro_batch} (global batch {global_batch_size} / "
            f"{accumulation_steps} accumulation steps)"
        )
        raise ValueError(f"{what} is not divisible by the {replicas} replicas.")
    per_replica = micro_batch // replicas

    def dataset_fn(context):
        dataset = examples_fn()
        if context.num_input_pipelines > 1:
            dataset = dataset.shard(context.num_input_pipelines, context.input_pipeline_id)
        dataset = dataset.batch(per_replica, drop_remainder=True)
        dataset = dataset.batch(accumulation_steps, drop_remainder=True)
        local_replicas = context.num_replicas_in_sync // context.num_input_pipelines
        return dataset.skip(skip_steps * local_replicas).prefetch(tf.data.AUTOTUNE)

    return strategy.distribute_datasets_from_function(dataset_fn)


class DistributedTrainer:
    """Runs optimizer steps of `model` under `strategy`.

    Args:
        strategy: a `tf.distribute.Strategy`; `model` and `optimizer` must
            have been created in its scope.
        model: a Keras model taking the `features` dict.
        optimizer: a Keras optimizer.
        loss_fn: `loss_fn(features, targets, outputs)` returning a dict of
            per-example float32 `[batch]` tensors, with the total in `loss`.
            Every entry is summed over the global batch and reported.
        global_batch_size: int, examples per optimizer step on all replicas
            and micro-batches together: each micro-batch's loss sum is
            divided by it, so the accumulated gradient is the gradient of
            the mean loss over the whole global batch (not k times it).
        accumulation_steps: int, micro-batches per optimizer step.
        clip_norm: float or None, global-norm clipping of the summed gradients.
            With a `keras.optimizers.LossScaleOptimizer` (float16), the loss
            is scaled, and the gradients are unscaled before clipping.
        jit_compile: bool, XLA-compile the forward and backward pass.
        statistics_fn: optional `statistics_fn(features, targets, outputs)`
            returning a dict of `(sum, count)` pairs to report (e.g. mean
            updates by token category).

    `steps_done` (an int64 variable named `step`, checkpoint it) counts the
    optimizer steps run. It is the data position of a resumed run: a
    float16 step skipped for overflow consumed its batch but does not
    advance `optimizer.iterations`.
    """

    def __init__(
        self,
        strategy,
        model,
        optimizer,
        loss_fn,
        global_batch_size,
        accumulation_steps=1,
        clip_norm=1.0,
        jit_compile=False,
        statistics_fn=None,
    ):
        self.strategy = strategy
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.global_batch_size = global_batch_size
        self.accumulation_steps = accumulation_steps
        self.clip_norm = clip_norm
        self.statistics_fn = statistics_fn
        # float16 training: dynamic loss scaling (keras.optimizers.LossScaleOptimizer).
        self._loss_scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        with strategy.scope():
            optimizer.build(model.trainable_variables)
            self.steps_done = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self._gradients = tf.function(self._micro_batch_gradients, jit_compile=jit_compile)
        self._step = tf.function(self._distributed_step)

    def _micro_batch_gradients(self, features, targets):
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            outputs = self.model(features, training=True)
            terms = self.loss_fn(features, targets, outputs)
            loss = tf.reduce_sum(terms["loss"]) / self.global_batch_size
            if self._loss_scaled:
                loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(loss, variables)
        gradients = [
            tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
            for g, v in zip(gradients, variables, strict=True)
        ]
        sums = {name: tf.reduce_sum(value) for name, value in terms.items()}
        sums["examples"] = tf.cast(tf.shape(terms["loss"])[0], tf.float32)
        if self.statistics_fn is not None:
            for name, (total, count) in self.statistics_fn(features, targets, outputs).items():
                sums[f"{name}/sum"] = total
                sums[f"{name}/count"] = count
        return gradients, sums

    def _replica_step(self, features, targets):
        def micro(i):
            pick = lambda t: t[i]  # noqa: E731
            return self._gradients(
                tf.nest.map_structure(pick, features), tf.nest.map_structure(pick, targets)
            )

        gradients, sums = micro(0)
        for i in range(1, self.accumulation_steps):
            more_gradients, more_sums = micro(i)
            gradients = [a + b for a, b in zip(gradients, more_gradients, strict=True)]
            sums = {k: sums[k] + more_sums[k] for k in sums}
        context = tf.distribute.get_replica_context()
        gradients = context.all_reduce(tf.distribute.ReduceOp.SUM, gradients)
        if self._loss_scaled:
            # Clip the true gradients; the LossScaleOptimizer unscales them
            # again (powers of two: exact) and skips non-finite steps.
            scale = tf.cast(self.optimizer.dynamic_scale, tf.float32)
            gradients = [g / scale for g in gradients]
        if self.clip_norm:
            gradients, norm = tf.clip_by_global_norm(gradients, self.clip_norm)
        else:
            norm = tf.linalg.global_norm(gradients)
        if self._loss_scaled:
            gradients = [g * scale for g in gradients]
        # The optimizer sums gradients across replicas once more: hand it
        # each replica's share of the (identical) reduced gradients.
        replicas = self.strategy.num_replicas_in_sync
        self.optimizer.apply(
            [g / replicas for g in gradients], self.model.trainable_variables
        )
        sums["gradient_norm"] = norm / replicas
        return sums

    def _distributed_step(self, iterator):
        features, targets = next(iterator)
        sums = self.strategy.run(self._replica_step, args=(features, targets))
        return {
            name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
            for name, value in sums.items()
        }

    def train_step(self, iterator):
        """Runs one optimizer step; returns the summed statistics (floats),
        with `steps` = 1 so that windows of several steps average their
        `gradient_norm`."""
        sums = {name: float(value) for name, value in self._step(iterator).items()}
        sums["steps"] = 1.0
        self.steps_done.assign_add(1)
        return sums


def summarize(sums):
    """Turns summed statistics into the means printed and logged."""
    examples = max(sums.get("examples", 0.0), 1.0)
    result = {
        name: sums[name] / examples
        for name in ("loss", "mlm_loss", "sop_loss", "ponder_cost")
        if name in sums
    }
    if "mlm_count" in sums:
        result["mlm_accuracy"] = sums["mlm_correct"] / max(sums["mlm_count"], 1.0)
    if "sop_correct" in sums:
        result["sop_accuracy"] = sums["sop_correct"] / examples
    for name in sums:
        if name.endswith("/sum"):
            category = name[: -len("/sum")]
            count = sums[f"{category}/count"]
            if count:
                result[f"updates/{category}"] = sums[name] / count
    if "gradient_norm" in sums:
        result["gradient_norm"] = sums["gradient_norm"] / max(sums.get("steps", 1.0), 1.0)
    return result


class CheckpointKeeper:
    """`tf.train.CheckpointManager` that also works with several workers.

    Every worker takes part in saving (the variables are mirrored and saving
    is collective); only the chief keeps its files, the others write to a
    temporary folder that is removed. A checkpoint becomes visible only once
    complete (the manager's state file is written last), so a process killed
    at any moment resumes from the last complete one.

    Args:
        strategy: the strategy.
        directory: str, where checkpoints live.
        max_to_keep: int.
        **objects: what to save (model, optimizer, ...).
    """

    def __init__(self, strategy, directory, max_to_keep=3, **objects):
        self.chief = is_chief(strategy)
        self.checkpoint = tf.train.Checkpoint(**objects)
        if self.chief:
            self.directory = directory
        else:
            resolver = strategy.cluster_resolver
            self.directory = os.path.join(
                directory, f".worker_{resolver.task_type}_{resolver.task_id}"
            )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self.directory, max_to_keep=max_to_keep
        )
        self._chief_manager = (
            self.manager
            if self.chief
            else tf.train.CheckpointManager(tf.train.Checkpoint(**objects), directory, 1)
        )

    def restore(self):
        """Restores the latest readable checkpoint; returns its path or None.

        A checkpoint whose files are damaged (truncated or missing data, e.g.
        a disk that filled up) is skipped with a warning naming it, and the
        one before it is restored.

        Raises:
            ValueError: there are checkpoints, and none is readable.
        """
        bad = []
        for path in reversed(self._chief_manager.checkpoints):
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except (IndexError, tf.errors.OpError) as error:
                reason = f"{type(error).__name__}: {str(error).strip().splitlines()[0]}"
                bad.append(f"{path} ({reason})")
                warnings.warn(
                    f"Checkpoint {path} is unreadable ({reason}); trying the one before it.",
                    stacklevel=2,
                )
                continue
            return path
        if bad:
            raise ValueError(
                f"No readable checkpoint in {self._chief_manager.directory}: "
                + "; ".join(bad)
                + ". Remove them to start again from scratch."
            )
        return None

    def save(self, step):
        path = self.manager.save(checkpoint_number=step)
        if not self.chief:
            shutil.rmtree(self.directory, ignore_errors=True)
        return path


class StepTimer:
    """Examples per second between two calls."""

    def __init__(self):
        self.last = time.perf_counter()

    def rate(self, examples):
        now = time.perf_counter()
        rate = examples / max(now - self.last, 1e-9)
        self.last = now
        return rate
