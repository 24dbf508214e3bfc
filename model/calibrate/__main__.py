"""``python -m model.calibrate``: the calibrate command (model.calibrate.cli)."""

from pipeline import console

console.silence_tensorflow_startup()  # before TensorFlow is imported (the split's shards are read with it)

from model.calibrate import cli  # noqa: E402

cli.run()
