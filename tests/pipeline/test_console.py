"""The console filter drops TensorFlow's start-up lines, in this process and its children, and nothing else."""

from pipeline import console
from tests.helpers import run_python

NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796112334.370526    2267 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will "
    "not be used.",
    "E0000 00:00:1796112337.690125    2267 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed "
    "call to cuInit: UNKNOWN ERROR (303)",
    "I0000 00:00:1733.1 1 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical "
    "results due to floating-point round-off errors from different computation orders.",
]
REAL = [
    "E0000 00:00:1796112337.690125    2267 op_kernel.cc:1857] OP_REQUIRES failed at decode_raw_op.cc:64",
    "Traceback (most recent call last):",
    "preprocess: error: --cv_dir x: no validated.tsv",
]


def test_noise_patterns_match_only_startup_lines():
    assert all(console.is_noise(line) for line in NOISE)
    assert not any(console.is_noise(line) for line in REAL)


def test_filter_covers_child_processes_and_keeps_real_errors():
    child = "import sys; sys.stderr.write(sys.argv[1])"
    lines = "\n".join(NOISE + REAL) + "\n"
    script = (
        "import subprocess, sys\n"
        "from pipeline import console\n"
        "console.silence_tensorflow_startup()\n"
        f"subprocess.run([sys.executable, '-c', {child!r}, {lines!r}])\n"
        f"sys.stderr.write({lines!r})\n"
        "console.terminal().write('live\\n')\n"
    )
    result = run_python(script)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines().count(REAL[0]) == 2  # the child's and the parent's
    assert not any(noise in result.stderr for noise in NOISE)
    assert "live" in result.stderr
