"""``python -m model.label``: the label command (model.label.cli)."""

from pipeline import console

console.silence_tensorflow_startup()  # before TensorFlow is imported, here and in every worker

from model.label import cli  # noqa: E402

cli.run()
