#!/usr/bin/env bash
# CI: the one stable-ABI wheel (cp39-abi3) in WHEEL_DIR installs and passes the smoke test under the
# oldest and the newest CPython this machine has, each in a fresh virtual environment with no Rust
# toolchain on PATH: .ci/smoke_wheel.py, then `saddlepoint train --quiet --epochs 3`.
#
#   .ci/wheel_pythons.sh WHEEL_DIR
#
# The interpreters are pyenv's CPython 3.9.* (requires-python's floor) and the newest 3.N.* under
# ~/.pyenv/versions (the PYENV_ROOT environment variable moves it); SADDLEPOINT_PYTHONS="python3.9
# python3.13" names them instead. numpy, scipy, scikit-learn and pandas come from PyPI as wheels
# (--only-binary): pip picks the newest versions that still support each Python.
set -euo pipefail

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: $0 WHEEL_DIR (a folder holding one saddlepoint-*-cp39-abi3-*.whl)" >&2
    exit 2
fi
checkout="$(cd "$(dirname "$0")/.." && pwd)"
shopt -s nullglob
wheels=("$(cd "$1" && pwd)"/saddlepoint-*-cp39-abi3-*.whl)
shopt -u nullglob
if [ "${#wheels[@]}" -ne 1 ]; then
    echo "error: expected one saddlepoint-*-cp39-abi3-*.whl in $1, found ${#wheels[@]}:" >&2
    ls -1 "$1" >&2
    exit 1
fi
wheel="${wheels[0]}"

# The oldest (3.9) and the newest CPython of pyenv, as full paths to their interpreters.
if [ -n "${SADDLEPOINT_PYTHONS:-}" ]; then
    read -r -a pythons <<< "$SADDLEPOINT_PYTHONS"
else
    versions="${PYENV_ROOT:-$HOME/.pyenv}/versions"
    # Final releases only (3.13.0, not 3.14.0a1 or a free-threaded 3.13.0t), by version order.
    releases="$(find "$versions" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null \
        | grep -E '^3\.[0-9]+\.[0-9]+$' | sort -V || true)"
    oldest="$(grep -m1 -E '^3\.9\.' <<< "$releases" || true)"
    newest="$(tail -n1 <<< "$releases")"
    if [ -z "$oldest" ] || [ -z "$newest" ]; then
        echo "error: need CPython 3.9.* and a newer 3.N.* under $versions, found: ${releases//$'\n'/ }" >&2
        exit 1
    fi
    pythons=("$versions/$oldest/bin/python3" "$versions/$newest/bin/python3")
fi

for python in "${pythons[@]}"; do
    version="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
    echo "+ CPython $version: a fresh venv, pip install $(basename "$wheel"), the smoke test without cargo"
    work="$(mktemp -d)"
    "$python" -m venv "$work/venv"
    "$work/venv/bin/python" -m pip install --quiet --upgrade pip
    # Wheels only: nothing may be built from source here, the extension least of all.
    "$work/venv/bin/python" -m pip install --quiet --only-binary=:all: "$wheel"
    # Outside the checkout, so that `import saddlepoint` is the installed wheel, not python/.
    (
        cd "$work"
        export PATH="$work/venv/bin:/usr/bin:/bin"
        if command -v cargo || command -v rustc; then
            echo "error: a Rust toolchain is on PATH ($PATH); the wheel must run without one" >&2
            exit 1
        fi
        python "$checkout/.ci/smoke_wheel.py"
        saddlepoint train --quiet --epochs 3 > train.out 2> train.err
        cat train.out
        # --quiet prints the result table and nothing else.
        if [ -s train.err ]; then
            echo "error: saddlepoint train --quiet wrote to stderr:" >&2
            cat train.err >&2
            exit 1
        fi
        grep -q '^test accuracy ' train.out || { echo "error: no 'test accuracy' row in the output" >&2; exit 1; }
    )
    rm -rf "$work"
done
