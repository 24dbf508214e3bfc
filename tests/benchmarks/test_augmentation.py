"""benchmarks.augmentation on generated voices: both libraries measured side by side, a choice made."""

import pytest

from tests.benchmarks.smoke import run_benchmark


@pytest.mark.slow
def test_augmentation_benchmark_runs_on_generated_voices(tmp_path):
    result = run_benchmark("augmentation", f"--data_dir={tmp_path / 'absent'}", "--clips=3")
    source = result["source"].lower()
    assert result["clips"] == 3 and ("synthetic" in source or "generated" in source)
    assert result["chosen_library"] in ("praat-parselmouth", "pyworld")
