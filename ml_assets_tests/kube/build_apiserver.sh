#!/usr/bin/env bash
# Builds a real Kubernetes control plane (kube-apiserver, kube-controller-manager, etcd) for the
# `kube` test tier, once, into a cache outside the repository. Nothing here is a container: no
# kind/minikube/k3s exists on these machines and no image can be pulled (DESIGN section 5).
#
#   Source: Debian bookworm's `kubernetes` source package (upstream v1.20.2 with vendor/), built
#   with Debian's Go. Its vendored reflect2 v1.0.1 crashes the server on the first custom object
#   under Go >= 1.18, so the upstream reflect2 v1.0.2 fix is applied before building.
#
# Prints the cache directory on its last line. Re-running with the binaries present does nothing.
set -euo pipefail

CACHE=${ML_ASSETS_KUBE_CACHE:-$HOME/.cache/ml_assets/kube-1.20.2}
VERSION="1.20.5+really1.20.2-1.1+deb12u1"

if [[ -x $CACHE/bin/kube-apiserver && -x $CACHE/bin/kube-controller-manager && -x $CACHE/bin/etcd ]]; then
  echo "$CACHE"
  exit 0
fi

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

need=()
command -v go >/dev/null || need+=(golang-go)
command -v rsync >/dev/null || need+=(rsync)
command -v dpkg-source >/dev/null || need+=(dpkg-dev)
[[ -x /usr/bin/etcd ]] || need+=(etcd-server)
if ((${#need[@]})); then
  echo "installing ${need[*]} from Debian" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2 \
    || { as_root apt-get update -q >&2 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2; }
fi
# The etcd-server package starts a system etcd on 2379; the fixture runs its own on free ports.
as_root systemctl disable --now etcd >/dev/null 2>&1 || pkill -x etcd 2>/dev/null || true

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A private apt configuration with deb-src lines, so the machine's own sources stay untouched.
mkdir -p "$work/apt/lists/partial"
cat >"$work/apt/sources.list" <<SRC
deb-src http://deb.debian.org/debian bookworm main
deb-src http://deb.debian.org/debian bookworm-updates main
deb-src http://deb.debian.org/debian-security bookworm-security main
SRC
apt_opts=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$work/apt/lists" -o "Debug::NoLocking=1")
echo "fetching the kubernetes $VERSION source package" >&2
apt-get "${apt_opts[@]}" update -q >&2
(cd "$work" && apt-get "${apt_opts[@]}" source -q --download-only "kubernetes=$VERSION" >&2 \
  && dpkg-source -x --no-check ./*.dsc src >&2)

r2="$work/src/vendor/github.com/modern-go/reflect2"
python3 - "$r2" <<'PY'
# reflect2 v1.0.2: Go 1.18 changed reflect.mapiterinit to fill a caller-owned iterator.
import pathlib, re, sys
root = pathlib.Path(sys.argv[1])
link = root / "unsafe_link.go"
text = link.read_text()
text = re.sub(r"func mapiterinit\(rtype unsafe\.Pointer, m unsafe\.Pointer\) \*hiter",
              "func mapiterinit(rtype unsafe.Pointer, m unsafe.Pointer, it *hiter)", text)
text = re.sub(r"type hiter struct \{.*?\n\}", """type hiter struct {
	key         unsafe.Pointer
	value       unsafe.Pointer
	t           unsafe.Pointer
	h           unsafe.Pointer
	buckets     unsafe.Pointer
	bptr        unsafe.Pointer
	overflow    *[]unsafe.Pointer
	oldoverflow *[]unsafe.Pointer
	startBucket uintptr
	offset      uint8
	wrapped     bool
	B           uint8
	i           uint8
	bucket      uintptr
	checkBucket uintptr
}""", text, flags=re.S)
assert "it *hiter" in text and "checkBucket" in text, "reflect2 layout changed: patch needs review"
link.write_text(text)
umap = root / "unsafe_map.go"
text = umap.read_text()
old = "hiter:      mapiterinit(type2.rtype, *(*unsafe.Pointer)(obj)),"
assert old in text, "reflect2 UnsafeIterate changed: patch needs review"
text = text.replace("func (type2 *UnsafeMapType) UnsafeIterate(obj unsafe.Pointer) MapIterator {\n\treturn &UnsafeMapIterator{",
                    "func (type2 *UnsafeMapType) UnsafeIterate(obj unsafe.Pointer) MapIterator {\n\tvar it hiter\n\tmapiterinit(type2.rtype, *(*unsafe.Pointer)(obj), &it)\n\treturn &UnsafeMapIterator{")
text = text.replace(old, "hiter:      &it,")
umap.write_text(text)
PY

echo "building kube-apiserver and kube-controller-manager (about 6 minutes on 2 cores)" >&2
(cd "$work/src" && make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >&2)
mkdir -p "$CACHE/bin.tmp"
cp "$work"/src/_output/bin/kube-apiserver "$work"/src/_output/bin/kube-controller-manager "$CACHE/bin.tmp/"
cp /usr/bin/etcd "$CACHE/bin.tmp/etcd"
rm -rf "$CACHE/bin" && mv "$CACHE/bin.tmp" "$CACHE/bin"
echo "$CACHE"
