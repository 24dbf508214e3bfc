"""``python -m model.train``: the train command (model.train.cli)."""

from pipeline import console

console.silence_tensorflow_startup()  # before TensorFlow is imported, here and in every worker

from model.train import cli  # noqa: E402

cli.run()
