"""inaSpeechSegmenter 0.6.8's gender CNN (MIT), loaded from the pinned wheel as a Keras block classifier.

The wheel ships ``inaSpeechSegmenter/keras_male_female_cnn.hdf5``, a CNN
trained on French broadcast speakers: input a patch of 68 frames x 24 log mel
bands (``features.INA_MEL``), standardised over the whole patch; output
softmax columns (female, male). The wheel is a build-time download (``pip
download --no-deps inaSpeechSegmenter==0.6.8``), never a runtime dependency:
its weights are converted into our exports (``model.export.ina``,
``model.export.fused``) or into the fused model's ina branch
(``models.cnn_ina_fusion``), and its MIT notice is written beside every export
that carries them.
"""

from __future__ import annotations

import os
import tempfile
import zipfile

import tensorflow as tf
import tf_keras as keras

WEIGHTS_IN_WHEEL = "inaSpeechSegmenter/keras_male_female_cnn.hdf5"
LICENSE_NAME = "LICENSE-inaSpeechSegmenter.txt"
ATTRIBUTION = ("Weights: inaSpeechSegmenter 0.6.8's gender CNN (keras_male_female_cnn.hdf5), Copyright (c) 2018 "
               "Ina (David Doukhan - http://www.ina.fr/), MIT License; see " + LICENSE_NAME)
PATCH_FRAMES = 68  # the CNN's input length in frames


def load_ina_cnn(wheel: str) -> keras.Model:
    """The wheel's gender CNN as a tf_keras model (inputs [n, 68, 24], outputs softmax [n, 2]: female, male).

    Raises:
      FileNotFoundError: ``wheel`` is missing or holds no such weights file.
    """
    try:
        with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(wheel) as z:
            return keras.models.load_model(z.extract(WEIGHTS_IN_WHEEL, tmp), compile=False)
    except (KeyError, zipfile.BadZipFile, OSError) as e:
        raise FileNotFoundError(f"{wheel}: not the inaSpeechSegmenter 0.6.8 wheel ({e})") from None


def license_text(wheel: str) -> str:
    """The MIT notice the wheel carries (its dist-info LICENSE)."""
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if n.endswith(("LICENSE", "LICENSE.txt", "LICENSE.md"))]
        if not names:
            raise FileNotFoundError(f"{wheel} has no LICENSE file")
        return z.read(names[0]).decode("utf-8")


def write_license(directory: str, text: str) -> str:
    """Writes the wheel's MIT notice (``license_text``, read before the export is written, so that a wheel
    without one fails before anything is) as ``LICENSE_NAME`` into ``directory``: every export of its weights."""
    path = os.path.join(directory, LICENSE_NAME)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def standardise_patches(x: tf.Tensor) -> tf.Tensor:
    """ina's input scaling: each [frames, bins] patch minus its mean, over its (population) std."""
    mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
    std = tf.math.reduce_std(x, axis=[1, 2], keepdims=True)
    return (x - mean) / tf.maximum(std, 1e-6)


def patch_classifier(cnn: keras.Model, frames: int, bins: int, name: str = "ina_gender_cnn") -> keras.Model:
    """[n, frames, bins] log mel patches -> [n, 2] (female, male), each patch standardised as ina does it."""
    inputs = keras.Input((frames, bins), name="log_mel")
    standardised = keras.layers.Lambda(standardise_patches, name="patch_standardisation")(inputs)
    return keras.Model(inputs, cnn(standardised), name=name)


def set_trainable_layers(cnn: keras.Model, count: int) -> None:
    """Fine-tuning: only the last ``count`` layers with weights train (0: all frozen; batch norms count)."""
    weighted = [layer for layer in cnn.layers if layer.weights]
    if not 0 <= count <= len(weighted):
        raise ValueError(f"ina_trainable_layers must be in [0, {len(weighted)}] (its layers with weights), "
                         f"got {count}")
    cnn.trainable = count > 0
    for i, layer in enumerate(weighted):
        layer.trainable = i >= len(weighted) - count
