"""`--tfds` on a dataset TFDS prepares from local files, in the installed
environment (no network, no `tfds.testing.mock_data`).

The builders below are ordinary `tfds.core.GeneratorBasedBuilder`s read from
a manual folder, as a user's own dataset would be. Defined in a module of a
package (`tests.`), preparing them goes through the code TFDS runs for its
own datasets (`DatasetBuilder.code_path`, which needs `importlib_resources`:
a fresh install without it failed here). The pre-training and fine-tuning
CLIs then read the prepared data from `--tfds-data-dir` in a fresh process,
where the builder's code is not even imported.
"""

from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests.helpers import run_module as run_cli
from tests.helpers import tiny_task_backbone as tiny_backbone
from tests.helpers import train_tiny_vocabulary, write_sst2_tsv

REPO_ROOT = Path(__file__).resolve().parents[1]


class LocalStories(tfds.core.GeneratorBasedBuilder):
    """Documents of `stories.txt` (blank-line separated) in the manual folder."""

    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = "Put stories.txt in the manual folder."

    def _info(self):
        return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({"text": tfds.features.Text()}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(dl_manager.manual_dir / "stories.txt")}

    def _generate_examples(self, path):
        documents = path.read_text(encoding="utf-8").split("\n\n")
        for index, document in enumerate(d for d in documents if d.strip()):
            yield index, {"text": document.strip()}


class LocalSst2(tfds.core.GeneratorBasedBuilder):
    """`train.tsv` and `dev.tsv` of the manual folder, with glue/sst2's features."""

    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = "Put train.tsv and dev.tsv in the manual folder."

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "sentence": tfds.features.Text(),
                    "label": tfds.features.ClassLabel(names=["negative", "positive"]),
                    "idx": tfds.features.Scalar(dtype=np.int32),
                }
            )
        )

    def _split_generators(self, dl_manager):
        folder = dl_manager.manual_dir
        return {
            "train": self._generate_examples(folder / "train.tsv"),
            "validation": self._generate_examples(folder / "dev.tsv"),
        }

    def _generate_examples(self, path):
        lines = path.read_text(encoding="utf-8").splitlines()[1:]
        for index, line in enumerate(lines):
            sentence, label = line.split("\t")
            yield index, {"sentence": sentence, "label": int(label), "idx": index}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Both datasets prepared from local files into one TFDS data dir."""
    from training.demo_corpus import write_demo_corpus

    folder = tmp_path_factory.mktemp("tfds_local")
    manual = folder / "manual"
    manual.mkdir()
    write_demo_corpus(str(manual / "stories.txt"), num_documents=40, seed=0)
    write_sst2_tsv(manual / "train.tsv", 32, seed=0)
    write_sst2_tsv(manual / "dev.tsv", 12, seed=1)
    data_dir = folder / "tensorflow_datasets"
    config = tfds.download.DownloadConfig(manual_dir=str(manual))
    for builder_class in (LocalStories, LocalSst2):
        builder = builder_class(data_dir=str(data_dir))
        builder.download_and_prepare(download_config=config)
    return folder, data_dir


def test_a_builder_of_local_files_prepares_in_the_installed_environment(prepared):
    folder, data_dir = prepared
    stories = tfds.builder("local_stories", data_dir=str(data_dir))
    documents = (folder / "manual" / "stories.txt").read_text().split("\n\n")
    assert stories.info.splits["train"].num_examples == len([d for d in documents if d.strip()])
    sst2 = tfds.builder("local_sst2", data_dir=str(data_dir))
    assert sst2.info.splits["train"].num_examples == 32
    assert sst2.info.splits["validation"].num_examples == 12
    first = next(iter(sst2.as_dataset(split="train", shuffle_files=False)))
    train_lines = (folder / "manual" / "train.tsv").read_text().splitlines()[1:]
    assert {line.split("\t")[0] for line in train_lines} >= {first["sentence"].numpy().decode()}


def test_pretrain_reads_a_locally_prepared_tfds_dataset(prepared, tmp_path):
    from training.vocab import train_vocabulary

    folder, data_dir = prepared
    vocab = train_vocabulary([folder / "manual" / "stories.txt"], 100, tmp_path / "vocab", seed=0)
    out = run_cli(
        "training.pretrain",
        ["--tfds", "local_stories", "--tfds-data-dir", str(data_dir), "--vocab", str(vocab),
         "--steps", "2", "--batch-size", "4", "--sequence-length", "32", "--max-layers", "2",
         "--log-every", "1", "--export-dir", "", "--strategy", "one_device",
         "--out", str(tmp_path / "run")],
    )  # fmt: skip
    documents = (folder / "manual" / "stories.txt").read_text().split("\n\n")
    assert f"{len([d for d in documents if d.strip()])} documents" in out
    assert "step 2/2" in out


def test_finetune_reads_a_locally_prepared_tfds_glue_dataset(prepared, tmp_path):
    import keras

    import keras_act

    _, data_dir = prepared
    tokenizer = keras_act.AlbertActTokenizer(proto=str(train_tiny_vocabulary(tmp_path / "vocab")))
    keras.utils.set_random_seed(0)
    preset = tmp_path / "preset"
    tiny_backbone(tokenizer.vocabulary_size()).save_to_preset(str(preset))
    tokenizer.save_to_preset(str(preset))
    out = run_cli(
        "training.finetune",
        ["--task", "sst2", "--tfds", "local_sst2", "--tfds-data-dir", str(data_dir),
         "--model", str(preset), "--steps", "2", "--batch-size", "8", "--log-every", "1",
         "--strategy", "one_device", "--out", str(tmp_path / "run"), "--no-save"],
    )  # fmt: skip
    assert "GLUE sst2: 32 training and 12 dev examples" in out
    assert "dev accuracy" in out
