"""``python -m model.predict``: the predict command (model.predict.cli)."""

from model.predict import cli

cli.run()
