#!/usr/bin/env bash
# Builds or fetches every binary of the development cluster, once, into a cache outside the
# repository whose folder names carry the versions (devcluster/versions.env), so a second run
# only checks that they are there. Prints, on its last line, a folder for this versions.env:
# bin/ (every binary), crds/ and kuberay-rbac/ (the operator's CRDs and RBAC) and cni/ (the CNI
# plugins).
#
#   Kubernetes  control plane, kubelet, kube-proxy and kubectl, built from k8s.io/kubernetes
#               through the Go module proxy, each reporting its real version
#   KubeRay     the operator, built from its Go module, and that version's own CRDs
#   CoreDNS     built from its Go module
#   SeaweedFS   the S3-compatible object store (`weed`), built from its Go module
#   pause       the pod sandbox's program, built from devcluster/pause
#   Debian      etcd, containerd, the CNI plugins (trixie's .debs), runc (bookworm's), unpacked
#               with dpkg -x: the machine's own packages are left as they are
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
CACHE=${ML_ASSETS_DEVCLUSTER_CACHE:-$HOME/.cache/ml_assets/devcluster}
export GOFLAGS="${GOFLAGS:-} -buildvcs=false" CGO_ENABLED=0
mkdir -p "$CACHE"
log() { echo "devcluster: $*" >&2; }
# The go command's module-by-module chatter goes to the part's build.log, shown if a step fails.
quietly() {  # log-file command...
  local file=$1
  shift
  "$@" >>"$file" 2>&1 || { tail -n 40 "$file" >&2; echo "devcluster: failed: $*" >&2; return 1; }
}

# Each part builds into DIR/bin.tmp, renamed to DIR/bin only when every step succeeded; `built`
# also records DIR in `parts`, the folders the set below links together.
parts=()
built() { parts+=("$1"); [[ -d $1/bin ]]; }
start() { rm -rf "$1/bin.tmp"; mkdir -p "$1/bin.tmp"; }
finish() { mv "$1/bin.tmp" "$1/bin"; }

ensure_go() {
  local have
  have=$(go env GOVERSION 2>/dev/null || true)
  have=${have#go}
  if [[ -n $have && $(printf '%s\n' 1.24 "$have" | sort -V | head -1) == 1.24 ]]; then return; fi
  local dir=$CACHE/go-$GO_VERSION
  if [[ ! -x $dir/bin/go ]]; then
    log "fetching Go $GO_VERSION from the Go module proxy (this machine's Go: ${have:-none})"
    local zip=$CACHE/go-$GO_VERSION.zip
    python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(*sys.argv[1:])' \
      "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go$GO_VERSION.linux-amd64.zip" "$zip"
    rm -rf "$dir.tmp" && python3 -m zipfile -e "$zip" "$dir.tmp"
    mv "$dir.tmp/golang.org/toolchain@v0.0.1-go$GO_VERSION.linux-amd64" "$dir"
    rm -rf "$dir.tmp" "$zip"
    chmod +x "$dir"/bin/* "$dir"/pkg/tool/*/*  # zipfile keeps no modes
  fi
  export PATH=$dir/bin:$PATH GOTOOLCHAIN=local
}

kubernetes() {
  local dir=$CACHE/kubernetes-$KUBERNETES_VERSION
  built "$dir" && return 0
  start "$dir"
  local minor=${KUBERNETES_VERSION#v*.} work
  minor=${minor%%.*}
  work=$(mktemp -d)
  log "building Kubernetes $KUBERNETES_VERSION (about 7 minutes on 2 cores, 2.3 GB of memory)"
  (
    cd "$work"
    quietly "$dir/build.log" go mod init devcluster/kubernetes
    # k8s.io/kubernetes replaces its staging modules by folders of its own repository; a module
    # that requires it names their published versions (v0.X.Y for v1.X.Y) instead.
    gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
    sed -n '/^replace (/,/^)/p' "$gomod" | sed -n 's#^\s*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' |
      while read -r module; do echo "replace $module => $module v0${KUBERNETES_VERSION#v1}"; done >>go.mod
    commands="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl"
    for command in $commands; do
      quietly "$dir/build.log" go get "k8s.io/kubernetes/cmd/$command@$KUBERNETES_VERSION"
    done
    version=k8s.io/component-base/version
    flags="-s -w -X $version.gitVersion=$KUBERNETES_VERSION -X $version.gitMajor=1"
    flags+=" -X $version.gitMinor=$minor -X $version.gitTreeState=clean"
    flags+=" -X $version.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    for command in $commands; do
      quietly "$dir/build.log" go build -ldflags "$flags" -o "$dir/bin.tmp/$command" \
        "k8s.io/kubernetes/cmd/$command"
    done
  )
  rm -rf "$work"
  finish "$dir"
}

kuberay() {
  local dir=$CACHE/kuberay-$KUBERAY_VERSION module=github.com/ray-project/kuberay/ray-operator
  built "$dir" && return 0
  start "$dir"
  log "building the KubeRay operator $KUBERAY_VERSION (about 2 minutes)"
  GOBIN=$dir/bin.tmp quietly "$dir/build.log" go install "$module@$KUBERAY_VERSION"
  finish "$dir"
}

# The operator's own CRDs, ServiceAccount and RBAC, from its module (what its Helm chart renders).
kuberay_manifests() {
  local dir=$CACHE/kuberay-manifests-$KUBERAY_VERSION module=github.com/ray-project/kuberay/ray-operator
  [[ -d $dir ]] && return 0
  local source
  source=$(go mod download -json "$module@$KUBERAY_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  cp -r "$source/config/crd/bases" "$dir.tmp/crds"
  cp -r "$source/config/rbac" "$dir.tmp/rbac"
  chmod -R u+w "$dir.tmp"  # the module cache is read-only
  mv "$dir.tmp" "$dir"
}

# The pod sandbox image's one program, built from this folder's source.
pause() {
  local dir=$CACHE/pause-$(sha256sum "$here/pause/main.go" | cut -c1-12)
  built "$dir" && return 0
  start "$dir"
  (cd "$here/pause" && GO111MODULE=off quietly "$dir/build.log" go build -ldflags "-s -w" \
    -o "$dir/bin.tmp/pause" main.go)
  finish "$dir"
}

coredns() {
  local dir=$CACHE/coredns-$COREDNS_VERSION
  built "$dir" && return 0
  start "$dir"
  log "building CoreDNS $COREDNS_VERSION (about 3.5 minutes)"
  GOBIN=$dir/bin.tmp quietly "$dir/build.log" go install "github.com/coredns/coredns@$COREDNS_VERSION"
  finish "$dir"
}

# Its go.mod has replace directives, which `go install module@version` refuses: it builds inside
# a copy of the module instead, as its own main module.
seaweedfs() {
  local dir=$CACHE/seaweedfs-$SEAWEEDFS_VERSION module=github.com/seaweedfs/seaweedfs source work
  built "$dir" && return 0
  start "$dir"
  log "building SeaweedFS $SEAWEEDFS_VERSION (about 7 minutes on 2 cores)"
  source=$(go mod download -json "$module@$SEAWEEDFS_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  work=$(mktemp -d)
  cp -r "$source/." "$work" && chmod -R u+w "$work"
  (cd "$work" && quietly "$dir/build.log" go build -ldflags "-s -w" -o "$dir/bin.tmp/weed" ./weed)
  rm -rf "$work"
  finish "$dir"
}

debian() {  # suite "package:upstream-version ..."
  local suite=$1 specs=$2 key dir work
  key=$(echo "$suite $specs" | sha256sum | cut -c1-12)
  dir=$CACHE/debian-$suite-$key
  built "$dir" && return 0
  start "$dir"
  work=$(mktemp -d)
  mkdir -p "$work/lists/partial" "$work/archives/partial"
  echo "deb http://deb.debian.org/debian $suite main" >"$work/sources.list"
  local apt=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache::archives=$work/archives" -o "Debug::NoLocking=1"
    -o "APT::Sandbox::User=root")  # its own temporary lists, which user _apt cannot read
  log "fetching $specs from Debian $suite"
  apt-get "${apt[@]}" update -q >/dev/null
  for spec in $specs; do
    local package=${spec%%:*} upstream=${spec#*:}
    (cd "$work" && apt-get "${apt[@]}" download -q "$package" >/dev/null)
    local deb
    deb=$(ls "$work/${package}"_*.deb)
    [[ $(dpkg-deb -f "$deb" Version) == *"$upstream"* ]] || {
      echo "devcluster: Debian $suite's $package is $(dpkg-deb -f "$deb" Version), not $upstream;" \
        "update devcluster/versions.env" >&2
      return 1
    }
    dpkg -x "$deb" "$work/root"
  done
  # The daemons and tools the node needs, wherever each package keeps them.
  find "$work/root" -type f -perm -u+x \( -path '*/bin/*' -o -path '*/sbin/*' \) \
    -exec cp {} "$dir/bin.tmp/" \;
  if [[ -d $work/root/usr/lib/cni ]]; then cp -r "$work/root/usr/lib/cni" "$dir/cni"; fi
  rm -rf "$work"
  finish "$dir"
}

ensure_go
# `build_binaries.sh seaweedfs` builds the object store alone (the tests' S3 server needs no
# cluster) and prints its folder.
if [[ ${1:-} == seaweedfs ]]; then
  seaweedfs
  echo "$CACHE/seaweedfs-$SEAWEEDFS_VERSION"
  exit 0
fi
kubernetes
kuberay
kuberay_manifests
pause
coredns
seaweedfs
debian trixie "$TRIXIE_PACKAGES"
debian bookworm "$BOOKWORM_PACKAGES"

# One folder of links per versions.env and pause source, so callers need no version of their own.
set_dir=$CACHE/set-$(cat "$here/versions.env" "$here/pause/main.go" | sha256sum | cut -c1-12)
if [[ ! -d $set_dir ]]; then
  rm -rf "$set_dir.tmp" && mkdir -p "$set_dir.tmp/bin"
  for part in "${parts[@]}"; do ln -s "$part"/bin/* "$set_dir.tmp/bin/"; done
  ln -s "$CACHE/kuberay-manifests-$KUBERAY_VERSION/crds" "$set_dir.tmp/crds"
  ln -s "$CACHE/kuberay-manifests-$KUBERAY_VERSION/rbac" "$set_dir.tmp/kuberay-rbac"
  for part in "${parts[@]}"; do [[ ! -d $part/cni ]] || ln -s "$part/cni" "$set_dir.tmp/cni"; done
  mv "$set_dir.tmp" "$set_dir"
fi
echo "$set_dir"
