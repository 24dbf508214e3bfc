"""``python -m model.export``: the export command (model.export.cli)."""

from pipeline import console

console.silence_tensorflow_startup()  # before TensorFlow is imported, here and in every worker

from model.export import cli  # noqa: E402

cli.run()
