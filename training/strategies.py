"""`tf.distribute` strategies by name: one device to many workers and TPUs."""

import json
import os

import tensorflow as tf

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")


def split_cpu(num_devices):
    """Splits the host CPU into `num_devices` logical devices.

    Must run before TensorFlow initialises its devices (before any op).
    Useful to try `mirrored` on a machine without GPUs.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)]
    )


def create_strategy(name="auto", tpu=None):
    """Creates a distribution strategy.

    Args:
        name: one of `auto` (a TPU when one is configured, all GPUs when
            there are several, else one device), `one_device`, `mirrored`
            (all local GPUs, or all logical CPUs when there is no GPU),
            `multi_worker` (`MultiWorkerMirroredStrategy`, configured by the
            `TF_CONFIG` environment variable), `tpu`.
        tpu: str, the TPU address or name for `TPUClusterResolver`; `"local"`
            on Colab and TPU VMs. Defaults to `TPU_NAME` or `"local"`.

    Returns:
        A `tf.distribute.Strategy`.

    Raises:
        ValueError: for an unknown name or a `multi_worker` strategy without
            `TF_CONFIG`.

    Example:

    >>> strategy = create_strategy("one_device")
    >>> strategy.num_replicas_in_sync
    1
    """
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; expected one of {STRATEGIES}.")
    if name == "auto":
        if tpu or os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR"):
            name = "tpu"
        elif len(tf.config.list_physical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "one_device"
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=tpu or os.environ.get("TPU_NAME") or "local"
        )
        if resolver.master() or tpu not in (None, "local"):
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "The multi_worker strategy needs the TF_CONFIG environment variable "
                '(e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                '"task": {"type": "worker", "index": 0}}).'
            )
        json.loads(os.environ["TF_CONFIG"])  # fails early on malformed JSON
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored":
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")


def is_chief(strategy):
    """Whether this process writes logs, checkpoints and exports."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type in (None, "chief") or (task_type == "worker" and task_id == 0)
