"""Packaging of keras-act."""

from setuptools import find_packages, setup

setup(
    name="keras-act",
    version="0.1.0",
    description=(
        "ALBERT-ACT (ALBERT with Adaptive Computation Time) for Keras 3 and "
        "TensorFlow: per-token depth, exact to the authors' reference."
    ),
    long_description=open("README.md", encoding="utf8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["keras_act", "keras_act.*", "training", "training.*"]),
    install_requires=[
        # TensorFlow itself (tensorflow-text requires it; never add
        # tensorflow-cpu beside it, which would install TensorFlow twice).
        # 2.20 and 2.21: the newest tensorflow-tpu is 2.20 (README, "Install
        # on GPU and TPU"; requirements-tpu.txt).
        "tensorflow>=2.20,<2.22",
        "tensorflow-text>=2.20,<2.22",
        "keras>=3.12,<4",
        "keras-hub>=0.32,<0.33",
        "tensorflow-datasets>=4.9.7,<5",
        # TFDS imports it to prepare any dataset builder (its own, or a user's
        # defined in a package) but does not declare it on Python >= 3.9.
        "importlib_resources>=6,<8",
        "tensorboard>=2.20,<3",
        # 0.2.2 is the first to break equal-score ties as the in-graph
        # tokenizer does (0.2.0 and 0.2.1: "eee" is "ee" "e").
        "sentencepiece>=0.2.2,<0.3",
        "safetensors>=0.4,<1",
        "h5py>=3.10,<4",
        "numpy>=1.26,<3",
        "huggingface_hub>=0.30,<1",
        # keras_act.analysis: depth heat-maps and histograms.
        "matplotlib>=3.8,<4",
        # keras_act.export: TF Serving warm-up requests (PredictionLog protos);
        # brings grpcio for the gRPC client of docs/serving.md.
        "tensorflow-serving-api>=2.20,<2.22",
    ],
    extras_require={
        "dev": [
            "pytest>=8,<10",
            "pytest-xdist>=3.5,<4",  # the suite runs in 2 processes (pytest.ini)
            "ruff>=0.15,<1",
            # Test-only references: the slow Hugging Face ALBERT tokenizer
            # (transformers 4.x without torch) and torch for reading the
            # legacy pytorch_model.bin with weights_only=True.
            "transformers>=4.40,<5",
            "torch==2.13.0",
            # tests/test_glue.py checks the GLUE correlations against scipy.stats.
            "scipy>=1.11,<2",
            # keras-hub's test harness (keras_hub.src.tests.test_case) imports grain.
            "grain>=0.2,<0.3",
            # Executing the Colab notebook in CI.
            "nbclient>=0.10,<1",
            "nbformat>=5.10,<6",
            "ipykernel>=6.29,<8",
        ],
    },
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
