#!/usr/bin/env bash
# Creates the venv (if missing) and installs the locked stack into it: requirements.lock plus
# the torch build that torch_build.py picks (PyTorch's CPU index where it answers, else PyPI's
# CUDA build). Prints the build installed on its last line.
#   usage: scripts/sync_venv.sh VENV        (TORCH_BUILD=cpu|cuda forces a build)
set -euo pipefail
venv=$1
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
UV_VERSION=0.13.9

# Before anything is downloaded: the indexes answer, or one line says which did not.
choice=$("$python" "$root/scripts/torch_build.py")
read -r build cpu_index <<<"$choice"

if [[ ! -x $venv/bin/python ]]; then
  # Debian's Python ships venv's pip bootstrap in a package of its own.
  "$python" -m venv "$venv" 2>/dev/null || {
    rm -rf "$venv"
    "$root/scripts/apt_install.sh" python3-venv "python$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv"
    "$python" -m venv "$venv"
  }
fi
[[ -x $venv/bin/uv ]] || "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"

index=()
if [[ $build == cpu ]]; then
  # Only torch differs between the indexes; the rest is pinned to the same versions on both.
  index=(--extra-index-url "$cpu_index" --index-strategy unsafe-best-match)
fi
"$venv/bin/uv" pip sync --python "$venv/bin/python" "${index[@]}" \
  "$root/requirements.lock" "$root/requirements-torch-$build.lock" >&2
echo "$build"
