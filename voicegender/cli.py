"""The ``voicegender`` command: one entry point, a subcommand per stage.

    voicegender predict a.wav b.mp3 --format=jsonl
    voicegender preprocess --flagfile=configs/preprocess.flags --cv_dir=... --output_dir=...
    voicegender train --flagfile=configs/cnn.flags --data_dir=D --model_dir=M

Each subcommand is the stage's own absl main (``python -m ...`` runs the
same), with its flags and flagfiles unchanged; ``voicegender SUBCOMMAND
--help`` lists them. A subcommand whose packages are not installed says which
extra to install, in one line.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import sys


@dataclasses.dataclass(frozen=True)
class Subcommand:
    """A stage's main, what it is for, and the extra (with the modules proving it installed) it needs."""

    module: str
    summary: str
    extra: str | None = None
    needs: tuple[str, ...] = ()
    tensorflow: bool = False  # silence TensorFlow's start-up lines before importing the main


TRAIN_MODULES = ("tensorflow", "tf_keras", "sklearn", "matplotlib")
SUBCOMMANDS = {
    "predict": Subcommand("model.predict.cli", "classify recordings: a verdict per file, per speaker, or segments"),
    "preprocess": Subcommand("beam_jobs.preprocess", "Common Voice release -> sharded TFRecords (Apache Beam)",
                             "beam", ("apache_beam", "scipy", "threadpoolctl", "google_crc32c", "parselmouth")),
    "train": Subcommand("model.train.cli", "train, summarise, export and calibrate a model", "train",
                        TRAIN_MODULES, tensorflow=True),
    "evaluate": Subcommand("model.evaluate.cli", "metrics and plots of a run on a split", "train", TRAIN_MODULES,
                           tensorflow=True),
    "label": Subcommand("model.label.cli", "predict the gender of a release's unlabelled clips (Apache Beam)",
                        "beam", ("apache_beam",)),
    "export": Subcommand("model.export.cli", "rebuild a run's SavedModel + LiteRT export", "train", TRAIN_MODULES,
                         tensorflow=True),
    "calibrate": Subcommand("model.calibrate.cli", "fit a run's calibration on its validation speakers", "train",
                            TRAIN_MODULES, tensorflow=True),
}


def usage() -> str:
    from voicegender import __version__

    width = max(map(len, SUBCOMMANDS))
    lines = [f"voicegender {__version__}: male or female voice, trained on Mozilla Common Voice", "",
             "usage: voicegender SUBCOMMAND [flags]   (voicegender SUBCOMMAND --help lists its flags)", ""]
    lines += [f"  {name:<{width}}  {sub.summary}" for name, sub in SUBCOMMANDS.items()]
    return "\n".join(lines)


def missing_extra(sub: Subcommand) -> str | None:
    """The one-line message for a subcommand whose extra is not installed, or None."""
    missing = [m for m in sub.needs if importlib.util.find_spec(m) is None]
    if not missing:
        return None
    return (f'needs the [{sub.extra}] extra ({", ".join(missing)} not installed): '
            f'pip install "voicegender[{sub.extra}]"')


def main(argv: list[str] | None = None) -> int:
    """Runs ``voicegender SUBCOMMAND ...``; returns the exit status (mains that finish call ``sys.exit``)."""
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
        print(usage())
        return 0 if len(argv) >= 2 else 2
    if argv[1] == "--version":
        from voicegender import __version__

        print(f"voicegender {__version__}")
        return 0
    name = argv[1]
    sub = SUBCOMMANDS.get(name)
    if sub is None:
        print(f"voicegender: error: unknown subcommand {name!r}; choose one of {', '.join(SUBCOMMANDS)}",
              file=sys.stderr)
        return 2
    problem = missing_extra(sub)
    if problem:
        print(f"voicegender {name}: error: {problem}", file=sys.stderr)
        return 2
    if sub.tensorflow:
        from pipeline import console

        console.silence_tensorflow_startup()
    prog = f"voicegender {name}"
    sys.argv = [prog, *argv[2:]]  # absl reads the program name for --help from here
    importlib.import_module(sub.module).run(sys.argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
