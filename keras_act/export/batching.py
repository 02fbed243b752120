"""`batching_parameters.txt`: the model server's batching settings, measured.

TensorFlow Serving started with `--enable_batching
--batching_parameters_file=FILE` merges concurrent requests into one run of
the graph (it concatenates every input along dimension 0, pads the batch to
the next of `allowed_batch_sizes` and splits the outputs). The export times
its own raw-text signature at growing batch sizes on the exporting machine
(`measure_batch_latencies`) and chooses the settings from those timings
(`choose_batching_parameters`); `batching_parameters_text` writes them in
the server's text-proto format (`BatchingParameters`), with the timings as
comments.
"""

import math
import os
import time

import numpy as np

from keras_act.atomic_files import write_text_atomically

BATCHING_PARAMETERS_FILE = "batching_parameters.txt"
#: Batch sizes timed at export (powers of two: the allowed sizes).
CANDIDATE_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128)
#: A larger batch must raise throughput by this factor to be worth waiting for.
MIN_THROUGHPUT_GAIN = 1.1
#: The longest a queued request should wait behind full batches (seconds).
MAX_QUEUE_DELAY_S = 1.0


def measure_batch_latencies(run, batch_sizes=CANDIDATE_BATCH_SIZES, repeats=3, time_budget_s=3.0):
    """Times `run(batch_size)` at each batch size (median of `repeats`).

    Stops early once `time_budget_s` is spent or a batch takes more than a
    second (larger batches only wait longer).

    Args:
        run: callable running one batch of the given size.
        batch_sizes: increasing batch sizes to time.
        repeats: timed runs per size, after one untimed run.
        time_budget_s: the time the measurement may take in all.

    Returns:
        A dict of batch size to seconds per run (at least the first size).

    Example:

    >>> latencies = measure_batch_latencies(lambda size: sum(range(size)), (1, 2), repeats=1)
    >>> sorted(latencies)
    [1, 2]
    """
    latencies = {}
    start = time.perf_counter()
    for size in batch_sizes:
        run(size)
        times = []
        for _ in range(repeats):
            begin = time.perf_counter()
            run(size)
            times.append(time.perf_counter() - begin)
        latencies[size] = float(np.median(times))
        if time.perf_counter() - start > time_budget_s or latencies[size] > 1.0:
            break
    return latencies


def choose_batching_parameters(latencies, num_cpus=None):
    """The batching settings for measured latencies.

    - `max_batch_size`: the smallest timed size beyond which a doubled batch
      raises throughput (texts per second) by less than 10%; larger batches
      would only add waiting.
    - `allowed_batch_sizes`: the timed sizes up to it (the server pads a
      batch to the next one; the last must be `max_batch_size`).
    - `batch_timeout_micros`: one batch of 1's latency: a lone request waits
      at most as long again for company.
    - `num_batch_threads`: the machine's CPUs (batches run in parallel).
    - `max_enqueued_batches`: as many full batches as the threads finish in
      `MAX_QUEUE_DELAY_S`; more requests are refused (`UNAVAILABLE`) rather
      than queued for longer.

    Args:
        latencies: dict of batch size to seconds (`measure_batch_latencies`).
        num_cpus: int, defaults to `os.cpu_count()`.

    Returns:
        A dict of the `BatchingParameters` fields.

    Example:

    >>> choose_batching_parameters({1: 0.010, 2: 0.012, 4: 0.016, 8: 0.030}, num_cpus=2)
    {'max_batch_size': 4, 'allowed_batch_sizes': [1, 2, 4], 'batch_timeout_micros': 10000, 'num_batch_threads': 2, 'max_enqueued_batches': 125}
    """
    sizes = sorted(latencies)
    if not sizes:
        raise ValueError("`latencies` must hold at least one batch size.")
    chosen = sizes[-1]
    for size, larger in zip(sizes, sizes[1:], strict=False):
        throughput = size / latencies[size]
        if larger / latencies[larger] < MIN_THROUGHPUT_GAIN * throughput:
            chosen = size
            break
    threads = max(1, int(num_cpus or os.cpu_count() or 1))
    return {
        "max_batch_size": chosen,
        "allowed_batch_sizes": [size for size in sizes if size <= chosen],
        "batch_timeout_micros": max(1, round(latencies[sizes[0]] * 1e6)),
        "num_batch_threads": threads,
        "max_enqueued_batches": max(
            threads, math.floor(threads * MAX_QUEUE_DELAY_S / latencies[chosen])
        ),
    }


def batching_parameters_text(parameters, latencies=None, note=None):
    """`parameters` as the model server's `BatchingParameters` text proto.

    Example:

    >>> print(batching_parameters_text({"max_batch_size": 2, "allowed_batch_sizes": [1, 2]}))
    max_batch_size { value: 2 }
    allowed_batch_sizes: 1
    allowed_batch_sizes: 2
    <BLANKLINE>
    """
    lines = [f"# {line}" if line else "#" for line in (note or "").splitlines()]
    if latencies:
        lines.append("# Measured at export (raw-text signature, seconds per batch):")
        lines += [
            f"#   batch {size:>4}: {seconds * 1e3:9.2f} ms  ({size / seconds:8.1f} texts/s)"
            for size, seconds in sorted(latencies.items())
        ]
    for key, value in parameters.items():
        if key == "allowed_batch_sizes":
            lines += [f"allowed_batch_sizes: {size}" for size in value]
        else:
            # Wrapped (google.protobuf.Int64Value) fields.
            lines.append(f"{key} {{ value: {value} }}")
    return "\n".join(lines) + "\n"


def parse_batching_parameters(text):
    """Reads a `batching_parameters_text` back (comments ignored).

    Example:

    >>> parse_batching_parameters("max_batch_size { value: 4 }\\nallowed_batch_sizes: 4\\n")
    {'max_batch_size': 4, 'allowed_batch_sizes': [4]}
    """
    parameters = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("allowed_batch_sizes:"):
            parameters.setdefault("allowed_batch_sizes", []).append(int(line.split(":")[1]))
            continue
        key, _, rest = line.partition("{")
        value = rest.replace("value:", "").replace("}", "").strip()
        if not key.strip() or not value:
            raise ValueError(f"Not a BatchingParameters line: {line!r}")
        parameters[key.strip()] = int(value)
    return parameters


def write_batching_parameters(base_dir, text):
    """Writes `base_dir/batching_parameters.txt` atomically (replacing it).

    Returns:
        The path of the file.
    """
    path = os.path.join(base_dir, BATCHING_PARAMETERS_FILE)
    write_text_atomically(path, text)
    return path


__all__ = [
    "BATCHING_PARAMETERS_FILE",
    "batching_parameters_text",
    "choose_batching_parameters",
    "measure_batch_latencies",
    "parse_batching_parameters",
    "write_batching_parameters",
]
