#!/usr/bin/env bash
# Installs the Debian packages named that are not installed yet (as root, else through sudo).
# The package lists are refreshed only when a first try cannot find a package.
set -euo pipefail
missing=()
for package in "$@"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
((${#missing[@]})) || exit 0
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
install() { as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"; }
echo "installing from Debian: ${missing[*]}" >&2
install >&2 || { as_root apt-get update -q >&2 && install >&2; }
