"""The serving SavedModel: raw waveforms in, per-clip gender out.

The graph computes features with ``pipeline.spectrogram`` (the code the Beam
job ran), normalizes them with the training statistics, classifies every
block and averages the voiced blocks of each clip. Serving therefore cannot
drift from training.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf
import tf_keras as keras

from model.predict.export_format import (  # noqa: F401 (EXPORT_DIRNAME is re-exported)
    CHECKSUM_KEY,
    EXPORT_DIRNAME,
    EXPORT_METADATA,
    LITERT_FILENAME,
    export_checksum,
)
from model.train import ina, loading, models
from pipeline import features, spectrogram
from pipeline.metadata import Normalizer


class ServingModule(tf.Module):
    """Wraps a float32 Keras block classifier with in-graph features."""

    def __init__(self, model: keras.Model, feature_set: features.FeatureSet, normalizer: Normalizer,
                 threshold: float = 0.5):
        super().__init__()
        self.model = model
        self._feature_set = feature_set
        self._normalizer = normalizer
        self._threshold = threshold
        frames, bins = feature_set.block_shape
        self.serve = tf.function(
            self._serve,
            input_signature=[
                tf.TensorSpec([None, None], tf.float32, name="waveform"),
                tf.TensorSpec([None], tf.int32, name="length"),
            ],
        )
        self._block_spec = tf.TensorShape([None, frames, bins])

    def _serve(self, waveform: tf.Tensor, length: tf.Tensor) -> dict[str, tf.Tensor]:
        clips = tf.shape(waveform)[0]
        blocks_ta = tf.TensorArray(tf.float32, size=clips, infer_shape=False, element_shape=self._block_spec)
        voiced_ta = tf.TensorArray(tf.bool, size=clips, infer_shape=False, element_shape=[None])
        counts_ta = tf.TensorArray(tf.int32, size=clips)
        for i in tf.range(clips):
            clip_len = tf.minimum(length[i], tf.shape(waveform)[1])
            blocks, voiced = spectrogram.waveform_to_blocks(waveform[i, :clip_len], self._feature_set)
            blocks_ta = blocks_ta.write(i, blocks)
            voiced_ta = voiced_ta.write(i, voiced)
            counts_ta = counts_ta.write(i, tf.shape(blocks)[0])
        blocks, voiced, counts = blocks_ta.concat(), voiced_ta.concat(), counts_ta.stack()
        clip_of_block = tf.repeat(tf.range(clips), counts)
        p_block = self.model(self._normalizer(blocks), training=False)[:, 0]

        voiced_f = tf.cast(voiced, tf.float32)
        voiced_count = tf.math.unsorted_segment_sum(voiced_f, clip_of_block, clips)
        voiced_sum = tf.math.unsorted_segment_sum(p_block * voiced_f, clip_of_block, clips)
        all_sum = tf.math.unsorted_segment_sum(p_block, clip_of_block, clips)
        count_f = tf.cast(counts, tf.float32)
        # Mean over voiced blocks; a clip whose every block is quiet falls back
        # to all its blocks; a clip with no whole block gets NaN.
        p_female = tf.where(voiced_count > 0, voiced_sum / tf.maximum(voiced_count, 1.0),
                            tf.where(count_f > 0, all_sum / tf.maximum(count_f, 1.0), float("nan")))
        names = tf.constant(list(features.GENDER_NAMES))
        gender = tf.where(counts > 0, tf.gather(names, tf.cast(p_female >= self._threshold, tf.int32)), "")
        return {
            "p_female": p_female,
            "gender": gender,
            "blocks": counts,
            "voiced_blocks": tf.cast(voiced_count, tf.int32),
        }


def litert_function(model: keras.Model, feature_set: features.FeatureSet, normalizer: Normalizer):
    """One clip's waveform -> per-block ``p_female`` and ``voiced``, traced for conversion."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="waveform")])
    def blocks_fn(waveform):
        blocks, voiced = spectrogram.waveform_to_blocks(waveform, feature_set)
        return {"p_female": model(normalizer(blocks), training=False)[:, 0], "voiced": tf.cast(voiced, tf.float32)}

    return blocks_fn


def export_litert(model: keras.Model, feature_set: features.FeatureSet, normalizer: Normalizer, path: str) -> str:
    """Writes a LiteRT (``.tflite``) model with the features in its graph.

    It classifies one clip per call (any length) with TFLite builtin ops only
    (the STFT lowers to RFFT2D), so ``ai-edge-litert`` runs it without
    TensorFlow; the per-clip mean over voiced blocks is done by the caller
    (``model.predict.classifier``), exactly as ``serving_default`` does it.

    Returns:
      ``path``.
    """
    fn = litert_function(model, feature_set, normalizer)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(converter.convert())
    return path


def export_saved_model(
    model: keras.Model,
    feature_set: features.FeatureSet,
    normalizer: Normalizer,
    export_dir: str,
    extra_metadata: dict | None = None,
) -> str:
    """Writes the serving SavedModel (signature ``serving_default``) and its LiteRT twin.

    Args:
      model: a float32 block classifier (build a float32 copy of a
        mixed-precision model first).
      feature_set: the features the model was trained on.
      normalizer: the training statistics.
      export_dir: created; an earlier export there is replaced.
      extra_metadata: merged into ``voicegender.json`` (e.g. the model name).

    Returns:
      ``export_dir``.

    Raises:
      ValueError: a weight or a normalization statistic is NaN or inf (nothing is written).
    """
    loading.check_finite(model, normalizer)
    module = ServingModule(model, feature_set, normalizer)
    if tf.io.gfile.exists(export_dir):
        tf.io.gfile.rmtree(export_dir)
    tf.saved_model.save(module, export_dir, signatures={"serving_default": module.serve})
    litert_path = os.path.join(export_dir, LITERT_FILENAME)
    export_litert(model, feature_set, normalizer, litert_path)
    info = {
        "format_version": features.FORMAT_VERSION,
        "feature_set": feature_set.to_dict(),
        "labels": list(features.GENDER_NAMES),
        "inputs": {"waveform": f"float32 [clips, samples], mono, {feature_set.sample_rate} Hz, in [-1, 1]",
                   "length": "int32 [clips], valid samples of each row"},
        "outputs": {"p_female": "mean block probability over voiced blocks (NaN if no whole block)",
                    "gender": "'male' | 'female' | '' (clip shorter than one block)",
                    "blocks": "whole blocks", "voiced_blocks": "blocks above the silence rule"},
        "litert": {"file": LITERT_FILENAME,
                   "inputs": {"waveform": f"float32 [samples], one clip, mono, {feature_set.sample_rate} Hz"},
                   "outputs": {"p_female": "float32 [blocks], per block", "voiced": "float32 [blocks], 1 = voiced"},
                   "aggregate": "p_female = mean over voiced blocks (all blocks if none is voiced)"},
        "threshold": 0.5,
        **(extra_metadata or {}),
    }
    # Binds model.tflite to the settings beside it: predict refuses a mismatch.
    with tf.io.gfile.GFile(litert_path, "rb") as f:
        info[CHECKSUM_KEY] = export_checksum(f.read(), info)
    with tf.io.gfile.GFile(os.path.join(export_dir, EXPORT_METADATA), "w") as f:
        json.dump(info, f, indent=2)
    return export_dir


def export_run(model: keras.Model, feature_set: features.FeatureSet, normalizer: Normalizer, model_dir: str,
               run_config: dict, validation: dict | None) -> str:
    """A training run's export, ``<model_dir>/export``, named after the run's model with its validation summary.

    A fusion run's export carries the weights of inaSpeechSegmenter's gender CNN, so it also carries their
    attribution (in ``voicegender.json``) and the wheel's MIT notice (``ina.LICENSE_NAME``), as
    ``model.export.fused``'s does.

    Raises:
      ValueError: a weight or statistic is NaN or inf (nothing is written).
      FileNotFoundError: a fusion run's wheel (``run_config["ina_wheel"]``) is gone.
    """
    extra = {"model": run_config.get("model"), "validation": validation}
    notice = None
    if run_config.get("model") == models.FUSION_MODEL:
        notice = ina.license_text(run_config["ina_wheel"])
        extra["attribution"] = ina.ATTRIBUTION
    export_dir = export_saved_model(model, feature_set, normalizer, os.path.join(model_dir, EXPORT_DIRNAME), extra)
    if notice is not None:
        ina.write_license(export_dir, notice)
    return export_dir
