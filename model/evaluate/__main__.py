"""``python -m model.evaluate``: the evaluate command (model.evaluate.cli)."""

from pipeline import console

console.silence_tensorflow_startup()  # before TensorFlow is imported, here and in every worker

from model.evaluate import cli  # noqa: E402

cli.run()
