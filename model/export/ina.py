r"""inaSpeechSegmenter 0.6.8's gender CNN (MIT) as an export of ours: issue 21's first candidate.

The pinned wheel ships ``inaSpeechSegmenter/keras_male_female_cnn.hdf5``, a CNN
trained on French broadcast speakers: input a patch of 68 frames x 24 log mel
bands (``features.INA_MEL``), standardised over the whole patch; output
softmax columns (female, male). This command wraps it as a block classifier
of ours (the patch standardisation in the graph, column 0 = p_female) and
writes an export exactly as ``voicegender export`` does: the SavedModel and
LiteRT with the features computed in the graph, so ``predict --model_dir``,
``voicegender.load`` and the benchmarks run it unchanged. The LiteRT file
needs the float32 FFT (``fft_float64=False``; LiteRT has no float64 ops), so the
export's feature set is that variant (``benchmarks.ina_features`` measures how far
it is from ina's own). Blocks are consecutive 68-frame patches and the clip's
answer is the mean over its voiced blocks, as for our own models; ina itself
scores patches 2 frames apart and smooths with a Viterbi pass. The export is
uncalibrated (temperature 1) until ``voicegender calibrate`` fits it.

The weights come from the wheel, a build-time download (``pip download --no-deps
inaSpeechSegmenter==0.6.8``); its MIT notice is written beside the export.

Usage:
  python -m model.export.ina --wheel=inaSpeechSegmenter-0.6.8-py3-none-any.whl --output_dir=/tmp/ina_export
"""

from __future__ import annotations

import dataclasses

from pipeline import console

if __name__ == "__main__":
    console.silence_tensorflow_startup()  # before model.train.ina imports TensorFlow: a user sees our lines only

import numpy as np  # noqa: E402

from model.train.ina import (  # noqa: F401 (LICENSE_NAME: re-exported)
    ATTRIBUTION,
    LICENSE_NAME,
    license_text,
    load_ina_cnn,
    patch_classifier,
    write_license,
)


def feature_set():
    """``features.INA_MEL`` with the float32 FFT LiteRT can run."""
    from pipeline import features

    return dataclasses.replace(features.INA_MEL, fft_float64=False)


def export(wheel: str, output_dir: str) -> str:
    """Writes the export (SavedModel + LiteRT + voicegender.json + the MIT notice); returns ``output_dir``."""
    from model.export import serving
    from pipeline.metadata import Normalizer

    fs = feature_set()
    model = patch_classifier(load_ina_cnn(wheel), fs.block_frames, fs.num_bins)
    notice = license_text(wheel)
    identity = Normalizer(np.zeros(fs.num_bins, np.float32), np.ones(fs.num_bins, np.float32))
    serving.export_saved_model(model, fs, identity, output_dir,
                               extra_metadata={"model": "ina_gender_cnn", "attribution": ATTRIBUTION})
    write_license(output_dir, notice)
    return output_dir


def main(argv: list[str]) -> int:
    import sys

    from absl import flags

    del argv
    try:
        path = export(flags.FLAGS.wheel, flags.FLAGS.output_dir)
    except (ValueError, FileNotFoundError) as e:  # not the wheel: one line
        print(f"model.export.ina: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("wheel", None, "The inaSpeechSegmenter 0.6.8 wheel (pip download --no-deps).")
    flags.DEFINE_string("output_dir", None, "Where the export is written (replaced).")
    flags.mark_flags_as_required(["wheel", "output_dir"])
    app.run(main)
