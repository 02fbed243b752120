"""The resumable loop that pre-training and fine-tuning share.

A run lives in one folder (`--out`): checkpoints under `checkpoints/`,
TensorBoard events under `logs/`. `TrainingLoop` restores the latest
readable checkpoint, continues the data where the restored step left it,
runs the optimizer steps of a `DistributedTrainer`, prints and logs the
means of every window of `log_every` steps, and checkpoints every
`checkpoint_every` steps and at the last one. What differs between the jobs
(the model and its loss, the log line, evaluations, TensorBoard pictures)
comes in as arguments.

Example:

```python
configure_process(args)  # --cpu-devices, --seed, --deterministic, --mixed-precision
strategy = create_strategy(args.strategy)
with strategy.scope():
    model = ...
loop = training_loop_from_flags(strategy, args, model, loss_fn, 1e-3, total_steps=300, warmup_steps=30)
loop.restore()
loop.run(examples, 300, log_every=10, checkpoint_every=100,
         summarize_fn=summarize, log_line=lambda step, means: f"step {step}")
```
"""

import os

from training.cli import SetupError


def configure_process(args):
    """Applies the process-wide flags every training job has.

    `--cpu-devices` splits the CPU (before TensorFlow starts its devices),
    then `--seed`, `--deterministic` and `--mixed-precision` set Keras's
    seeds, TensorFlow's op determinism and the global dtype policy.

    Args:
        args: the parsed flags, with `cpu_devices`, `seed`, `deterministic`
            and `mixed_precision`.
    """
    if args.cpu_devices:
        from training.strategies import split_cpu

        split_cpu(args.cpu_devices)
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(args.seed)
    if args.deterministic:
        tf.config.experimental.enable_op_determinism()
    if args.mixed_precision:
        keras.config.set_dtype_policy(f"mixed_{args.mixed_precision}")


def training_loop_from_flags(
    strategy,
    args,
    model,
    loss_fn,
    learning_rate,
    total_steps,
    warmup_steps,
    power=1.0,
    statistics_fn=None,
    checkpointed_model=None,
):
    """The optimizer, `DistributedTrainer` and `TrainingLoop` the shared
    flags describe, built in `strategy.scope()`.

    The flags: `--optimizer`, `--weight-decay`, `--mixed-precision` (float16:
    dynamic loss scaling), `--batch-size`, `--accumulation-steps`,
    `--clip-norm`, `--jit-compile`, `--out` and `--keep-checkpoints`.

    Args:
        strategy: the `tf.distribute.Strategy` `model` was built under.
        args: the parsed flags.
        model: the Keras model trained (takes the features dict).
        loss_fn: `loss_fn(features, targets, outputs)`, see
            `DistributedTrainer`.
        learning_rate: float, the peak learning rate.
        total_steps: int, the optimizer steps of the schedule.
        warmup_steps: int, linear warm-up steps.
        power: float, the decay's power (1: linear).
        statistics_fn: optional, see `DistributedTrainer`.
        checkpointed_model: the model the checkpoints hold (default:
            `model`), e.g. a task whose Functional view is trained.

    Returns:
        A `TrainingLoop`; its trainer and optimizer are `loop.trainer` and
        `loop.trainer.optimizer`.
    """
    from training.optimizers import create_optimizer
    from training.trainer import DistributedTrainer

    with strategy.scope():
        optimizer = create_optimizer(
            args.optimizer,
            learning_rate,
            total_steps=total_steps,
            warmup_steps=warmup_steps,
            weight_decay=args.weight_decay,
            power=power,
            loss_scaling=args.mixed_precision == "float16",
        )
        trainer = DistributedTrainer(
            strategy,
            model,
            optimizer,
            loss_fn,
            global_batch_size=args.batch_size,
            accumulation_steps=args.accumulation_steps,
            clip_norm=args.clip_norm,
            jit_compile=args.jit_compile,
            statistics_fn=statistics_fn,
        )
        return TrainingLoop(
            strategy,
            trainer,
            args.model_dir,
            args.keep_checkpoints,
            model=model if checkpointed_model is None else checkpointed_model,
            optimizer=optimizer,
        )


class TrainingLoop:
    """Resumable optimizer steps with logs, TensorBoard events and checkpoints.

    Create it in `strategy.scope()`: it makes the `CheckpointKeeper` of the
    run's `checkpoints/` folder, which saves `objects` and the trainer's
    step counter. Only the chief prints and writes TensorBoard events; every
    worker takes part in the steps and the (collective) checkpoints.

    Args:
        strategy: the `tf.distribute.Strategy` of `trainer`.
        trainer: a `training.trainer.DistributedTrainer`.
        model_dir: str, the run's folder.
        keep_checkpoints: int, checkpoints kept.
        **objects: what the checkpoints hold besides the step (model,
            optimizer).
    """

    def __init__(self, strategy, trainer, model_dir, keep_checkpoints, **objects):
        from training.strategies import is_chief
        from training.trainer import CheckpointKeeper

        self.strategy = strategy
        self.trainer = trainer
        self.chief = is_chief(strategy)
        self.logs = os.path.join(model_dir, "logs")
        self.keeper = CheckpointKeeper(
            strategy,
            os.path.join(model_dir, "checkpoints"),
            max_to_keep=keep_checkpoints,
            step=trainer.steps_done,
            **objects,
        )
        self.writer = None

    @property
    def step(self):
        """int, the optimizer steps done (restored ones included)."""
        return int(self.trainer.steps_done.numpy())

    def restore(self):
        """Restores the latest readable checkpoint; returns its path or None.

        Raises:
            SetupError: there are checkpoints, and none is readable.
        """
        try:
            return self.keeper.restore()
        except ValueError as error:
            raise SetupError(str(error)) from error

    def write_scalars(self, step, values, prefix=""):
        """Writes `values` (a dict of floats) as TensorBoard scalars named
        `prefix + name` at `step`, on the chief (a no-op elsewhere)."""
        import tensorflow as tf

        if self.writer is None:
            return
        with self.writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(f"{prefix}{name}", value)
        self.writer.flush()

    def run(
        self,
        examples_fn,
        steps,
        log_every,
        checkpoint_every,
        summarize_fn,
        log_line,
        scalar_prefix="",
        after_log=None,
        after_step=None,
    ):
        """Runs the optimizer steps from the restored one up to `steps`.

        Args:
            examples_fn: callable returning the run's endless, deterministic
                example dataset (see `training.trainer.distribute_dataset`).
            steps: int, the optimizer steps of the whole run (batched as
                the trainer's global batch and micro-batches say).
            log_every: int, steps per logged window (and at the last step).
            checkpoint_every: int, steps between checkpoints (and at the
                last step).
            summarize_fn: turns a window's summed statistics into the means
                printed and logged.
            log_line: `log_line(step, means)` returning the printed line;
                the examples per second are added to it.
            scalar_prefix: str, the prefix of the TensorBoard scalars (the
                means and `learning_rate`).
            after_log: optional `after_log(step)`, run on the chief after
                each logged window (e.g. TensorBoard pictures).
            after_step: optional `after_step(step)`, run on every worker
                after each step, before its checkpoint (e.g. evaluations).

        Returns:
            int, the last step.

        Raises:
            SetupError: the batch cannot be shared by the replicas and
                micro-batches.
        """
        import tensorflow as tf

        from training.trainer import StepTimer, distribute_dataset

        step = self.step
        try:
            dataset = distribute_dataset(
                self.strategy,
                examples_fn,
                self.trainer.global_batch_size,
                self.trainer.accumulation_steps,
                skip_steps=step,
            )
        except ValueError as error:  # a batch the replicas cannot share
            raise SetupError(str(error)) from error
        iterator = iter(dataset)
        if self.chief:
            self.writer = tf.summary.create_file_writer(self.logs)
            print(f"TensorBoard logs in {self.logs}: tensorboard --logdir {self.logs}", flush=True)
        timer = StepTimer()
        window = {}
        while step < steps:
            sums = self.trainer.train_step(iterator)
            step += 1
            for name, value in sums.items():
                window[name] = window.get(name, 0.0) + value
            if step % log_every == 0 or step == steps:
                means = summarize_fn(window)
                if self.chief:
                    rate = timer.rate(window["examples"])
                    print(f"{log_line(step, means)}  ({rate:.1f} examples/s)", flush=True)
                    # The schedule's rate at this step (read at every log).
                    learning_rate = self.trainer.optimizer.learning_rate
                    self.write_scalars(
                        step, {**means, "learning_rate": learning_rate}, scalar_prefix
                    )
                    if after_log is not None:
                        after_log(step)
                window = {}
            if after_step is not None:
                after_step(step)
            if step % checkpoint_every == 0 or step == steps:
                self.keeper.save(step)
        return step
