"""Packaging for voicegender.

Dataflow workers install the project with ``--setup_file=./setup.py``; they
already have Apache Beam, so only the other runtime dependencies are listed.
"""

import setuptools

setuptools.setup(
    name="voicegender",
    version="0.1.0",
    description="Voice gender classification trained on Mozilla Common Voice (Beam + TensorFlow).",
    packages=setuptools.find_packages(include=["pipeline", "pipeline.*", "model", "model.*", "beam_jobs", "beam_jobs.*"]),
    # The shipped pretrained model (SavedModel + LiteRT), used by `model.predict` without --model_dir.
    package_data={"model": ["pretrained/*.*", "pretrained/variables/*", "pretrained/assets/*"]},
    python_requires=">=3.10",
    install_requires=[
        "tensorflow==2.21.0",
        "tf-keras==2.21.0",
        "tensorboard==2.21.0",
        "ai-edge-litert==2.3.0",
        "google-crc32c==1.9.0",
        "absl-py==2.5.1",
        "soundfile==0.14.0",
        "soxr==1.1.0",
        "praat-parselmouth==0.4.7",  # --augment_copies (pipeline.waveform_augment)
    ],
)
