#!/usr/bin/env bash
# Builds .venv-ina/ at the repo root: the peer baseline inaSpeechSegmenter 0.8.0 (TensorFlow 2.21 CPU) with the
# Keras weights that inaSpeechSegmenter 0.6.8 shipped inside its wheel, so that it runs fully offline.
#
#   bash benchmarks/peers/setup_ina.sh        # idempotent: a no-op once .venv-ina/.installed is up to date
#
# 0.8.0 downloads its weights at run time through keras.utils.get_file(cache_subdir='inaSpeechSegmenter');
# get_file downloads nothing when the file is already in $KERAS_HOME/inaSpeechSegmenter/. This script puts the
# three .hdf5 files there (KERAS_HOME = .venv-ina/keras_home; benchmarks/peers/ina_peer.py sets it itself).
# Needs: python3.11 and a reachable package index (PyPI or its mirror); nothing else from the network.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-python3.11}"
VENV="$ROOT/.venv-ina"
REQ="$ROOT/benchmarks/peers/requirements-ina.txt"
WEIGHTS_DIR="$VENV/keras_home/inaSpeechSegmenter"
STAMP="$VENV/.installed"

# sha256 of the weights inside inaSpeechSegmenter-0.6.8-py3-none-any.whl.
WEIGHTS_SHA256="2ed3714bdbda7f1ed115b3077ff285ccbb23279df7a3bab6969ee98b6019736f  keras_male_female_cnn.hdf5
14379ba71352d8981bc24a15c069c84cf6f78ff2ffe7377d43b32465ebd06e01  keras_speech_music_cnn.hdf5
f04b5e3c86fa2e81666d106b0867350fe7858c7bd006c2a74c27b5b45507e7d8  keras_speech_music_noise_cnn.hdf5"

weights_ok() {
    [ -d "$WEIGHTS_DIR" ] && (cd "$WEIGHTS_DIR" && echo "$WEIGHTS_SHA256" | sha256sum --check --status)
}

if [ -f "$STAMP" ] && [ "$STAMP" -nt "$REQ" ] && [ -x "$VENV/bin/python" ] && weights_ok; then
    echo "setup_ina: $VENV is up to date"
    exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup_ina: creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
rm -f "$STAMP"

echo "setup_ina: installing $REQ (--no-deps: the file is the full pinned closure)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$REQ"

if ! weights_ok; then
    echo "setup_ina: fetching the inaSpeechSegmenter 0.6.8 wheel for its .hdf5 weights"
    TMP="$(mktemp -d)"
    trap 'rm -rf "$TMP"' EXIT
    "$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
        --only-binary=:all: --dest "$TMP" "inaSpeechSegmenter==0.6.8"
    mkdir -p "$WEIGHTS_DIR"
    "$VENV/bin/python" - "$TMP" "$WEIGHTS_DIR" <<'EOF'
import pathlib
import sys
import zipfile

src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
(wheel,) = src.glob("*.whl")
with zipfile.ZipFile(wheel) as zf:
    names = [n for n in zf.namelist() if n.endswith(".hdf5")]
    for name in names:
        (dst / pathlib.PurePosixPath(name).name).write_bytes(zf.read(name))
print("setup_ina: extracted", ", ".join(pathlib.PurePosixPath(n).name for n in names))
EOF
    weights_ok || { echo "setup_ina: weight checksums do not match" >&2; exit 1; }
fi

# Smoke check: the package imports and its model loader finds the cached weights (no network access).
if ! smoke="$(KERAS_HOME="$VENV/keras_home" TF_CPP_MIN_LOG_LEVEL=3 HTTP_PROXY=http://127.0.0.1:9 \
    HTTPS_PROXY=http://127.0.0.1:9 "$VENV/bin/python" - 2>&1 <<'EOF'
import inaSpeechSegmenter
from inaSpeechSegmenter.remote_utils import get_remote

for name in ("keras_speech_music_noise_cnn.hdf5", "keras_male_female_cnn.hdf5"):
    get_remote(name)
print("setup_ina: inaSpeechSegmenter", inaSpeechSegmenter.__version__, "ready")
EOF
)"; then
    echo "$smoke" >&2
    echo "setup_ina: smoke check failed" >&2
    exit 1
fi
echo "$smoke" | grep "^setup_ina:"

touch "$STAMP"
echo "setup_ina: done ($(du -sh "$VENV" | cut -f1) in $VENV)"
