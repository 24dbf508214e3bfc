#!/usr/bin/env bash
# The package as a user installs it: a wheel built from this checkout, in a virtualenv of its own.
# Checks that the base install holds neither TensorFlow nor Beam, stays under 400 MB, and that
# `voicegender predict` and `voicegender.load().classify` give the same answer on a real clip
# (a Common Voice clip from ../shared when present, else a generated voice).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$WORK/dist" . 2>&1 | grep -v "^WARNING: Location" || true
rm -rf build  # setuptools' scratch in the checkout
WHEEL=$(ls "$WORK"/dist/voicegender-*.whl)
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
"$WORK/venv/bin/python" -m pip install --quiet "$WHEEL" 2>&1 | grep -v "^WARNING: Location" || true
cd "$WORK"  # away from the checkout: only the installed package can be imported
CLIP=$(ls "$OLDPWD"/../shared/data/commonvoice-6.1-sample/en/clips/*.mp3 2>/dev/null | head -1 || true)
if [ -z "$CLIP" ]; then
    CLIP="$WORK/voice.wav"
    "$WORK/venv/bin/python" - "$CLIP" <<'PY'
import sys
import numpy as np
import soundfile
t = np.arange(3 * 16000) / 16000
f0 = 120 + 10 * np.sin(2 * np.pi * 0.5 * t)
voice = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / 16000) / k for k in range(1, 20)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
soundfile.write(sys.argv[1], (0.1 * voice).astype(np.float32), 16000)
PY
fi
"$WORK/venv/bin/python" - "$WORK/venv" "$CLIP" <<'PY'
import importlib.util, json, os, subprocess, sys
venv, clip = sys.argv[1], sys.argv[2]
heavy = [m for m in ("tensorflow", "tf_keras", "apache_beam", "sklearn") if importlib.util.find_spec(m)]
assert not heavy, f"the base install holds {heavy}"
size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(venv) for f in files
           if not os.path.islink(os.path.join(d, f)))
assert size < 400 * 2**20, f"the base install is {size / 2**20:.0f} MB"
printed = subprocess.run([os.path.join(venv, "bin", "voicegender"), "predict", "--format=jsonl", clip],
                         capture_output=True, text=True, check=True).stdout
record = json.loads(printed)
import voicegender
result = voicegender.load().classify(clip)
assert record["gender"] == result.gender and abs(record["p_female"] - result.p_female) < 1e-6, (record, result)
print(f"wheel check: base install {size / 2**20:.0f} MB, no TensorFlow/Beam; "
      f"{os.path.basename(clip)}: predict and the API agree ({result.gender}, p_female {result.p_female:.4f})")
PY
