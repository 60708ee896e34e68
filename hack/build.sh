#!/usr/bin/env bash
# Build the Go binaries of the local test planes into a cache outside the repo.
#
# Everything comes from the Go module proxy: kube-apiserver, kube-controller-manager,
# kube-scheduler and kubectl from k8s.io/kubernetes through the wrapper modules in
# hack/go/k8s-*, the real nodes' kubelet through hack/go/kubelet-* (the same wrapper plus
# kubelet's extra requirements, so the k8s stamps stay valid), etcd through hack/go/etcd,
# local-path-provisioner through hack/go/local-path-provisioner, kopia through hack/go/kopia,
# kwok/kwokctl and MinIO by `go install`, kmmover (the volume-data mover) from mover/; the CSI
# snapshot parts of the real nodes: external-snapshotter and external-provisioner through
# hack/go/external-*, the hostpath driver and node-driver-registrar from the proxy if it serves
# them, else from the upstream tags' source archives in $THIRD_PARTY (see csi_source).
# Idempotent: a component whose stamp (version + wrapper go.mod hash, or mover/'s source hash)
# matches is skipped, so a warm run costs a second.  Versions are pinned in hack/versions.env.
#
# usage: hack/build.sh [COMPONENT ...]   (default: all; see `components` at the end)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$HERE/versions.env"
CACHE=${KUBE_MIGRATE_CACHE:-$HOME/.cache/kube-migrate}
BIN=$CACHE/bin
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
THIRD_PARTY=${KUBE_MIGRATE_THIRD_PARTY:-$HERE/../../shared/third_party} # ../shared/third_party
mkdir -p "$BIN" "$CACHE/src"

log() { printf '[build] %s\n' "$*" >&2; }

stamp_ok() { # dir key
  [[ -f "$1/.stamp" && "$(cat "$1/.stamp")" == "$2" ]]
}

timed() { # name cmd...
  local name=$1 start end
  shift
  start=$(date +%s)
  "$@"
  end=$(date +%s)
  log "$name built in $((end - start))s"
  echo "$(date -u +%FT%TZ) $name $((end - start))s" >>"$CACHE/build-times.log"
}

wrapper_src() { # wrapper-dir -> a copy in the cache (go get/build rewrite go.mod/go.sum)
  local src=$HERE/go/$1 dst=$CACHE/src/$1
  rm -rf "$dst" && mkdir -p "$dst"
  cp -r "$src"/. "$dst"/
  echo "$dst"
}

K8S_TAGS=selinux,notest,grpcnotrace

k8s_ldflags() { # version wrapper-copy -> the -X version stamps `make release` would set
  local kv=$1 dir=$2 minor commit ldf="-s -w" p
  minor=$(echo "$kv" | cut -d. -f2)
  commit=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$kv" |
    python3 -c 'import json,sys; print(json.load(sys.stdin).get("Origin",{}).get("Hash",""))')
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf="$ldf -X '$p.gitVersion=$kv' -X '$p.gitMajor=1' -X '$p.gitMinor=$minor'"
    ldf="$ldf -X '$p.gitTreeState=clean' -X '$p.gitCommit=$commit' -X '$p.buildDate=1970-01-01T00:00:00Z'"
  done
  echo "$ldf"
}

build_k8s() { # version
  local kv=$1 out dir key ldf
  out=$BIN/k8s-$kv
  key="$kv $(sha256sum "$HERE/go/k8s-$kv/go.mod" | cut -c1-16)"
  if stamp_ok "$out" "$key"; then log "k8s $kv: cached"; return; fi
  dir=$(wrapper_src "k8s-$kv")
  log "k8s $kv: resolving modules"
  (cd "$dir" && go get "k8s.io/kubernetes/cmd/kube-apiserver@$kv" "k8s.io/kubernetes/cmd/kube-controller-manager@$kv" \
    "k8s.io/kubernetes/cmd/kube-scheduler@$kv" "k8s.io/kubernetes/cmd/kubectl@$kv")
  ldf=$(k8s_ldflags "$kv" "$dir")
  log "k8s $kv: compiling kube-apiserver, kube-controller-manager, kube-scheduler, kubectl"
  mkdir -p "$out"
  (cd "$dir" && go build -trimpath -tags "$K8S_TAGS" -ldflags "$ldf" -o "$out/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
  "$out/kube-apiserver" --version >&2
  echo "$key" >"$out/.stamp"
}

# hack/go/kubelet-$kv is hack/go/k8s-$kv after `go get k8s.io/kubernetes/cmd/kubelet@$kv`, which
# adds kubelet's own requirements; a separate wrapper keeps the k8s-$kv stamps (and cache) valid.
build_kubelet() { # version: its own output dir and stamp, next to (not inside) k8s-$kv
  local kv=$1 out dir key ldf
  out=$BIN/kubelet-$kv
  key="$kv $(sha256sum "$HERE/go/kubelet-$kv/go.mod" | cut -c1-16)"
  if stamp_ok "$out" "$key"; then log "kubelet $kv: cached"; return; fi
  dir=$(wrapper_src "kubelet-$kv")
  log "kubelet $kv: resolving modules"
  (cd "$dir" && go get "k8s.io/kubernetes/cmd/kubelet@$kv")
  ldf=$(k8s_ldflags "$kv" "$dir")
  log "kubelet $kv: compiling"
  mkdir -p "$out"
  (cd "$dir" && go build -trimpath -tags "$K8S_TAGS" -ldflags "$ldf" -o "$out/kubelet" k8s.io/kubernetes/cmd/kubelet)
  "$out/kubelet" --version >&2
  echo "$key" >"$out/.stamp"
}

build_local_path_provisioner() {
  local v=$LOCAL_PATH_PROVISIONER out=$BIN/local-path-provisioner-$LOCAL_PATH_PROVISIONER
  if stamp_ok "$out" "$v"; then log "local-path-provisioner $v: cached"; return; fi
  mkdir -p "$out"
  GOBIN=$out go install -trimpath -ldflags "-s -w -X main.VERSION=$v" "github.com/rancher/local-path-provisioner@$v"
  "$out/local-path-provisioner" --version >&2
  echo "$v" >"$out/.stamp"
}

build_etcd() {
  local out=$BIN/etcd-$ETCD dir key
  key="$ETCD $(sha256sum "$HERE/go/etcd/go.mod" | cut -c1-16)"
  if stamp_ok "$out" "$key"; then log "etcd $ETCD: cached"; return; fi
  dir=$(wrapper_src etcd)
  (cd "$dir" && go get "go.etcd.io/etcd/server/v3@$ETCD" &&
    go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
  "$out/etcd" --version >&2
  echo "$key" >"$out/.stamp"
}

build_kwok() {
  local out=$BIN/kwok-$KWOK
  if stamp_ok "$out" "$KWOK"; then log "kwok $KWOK: cached"; return; fi
  mkdir -p "$out"
  GOBIN=$out go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK"
  echo "$KWOK" >"$out/.stamp"
}

build_velero() {
  local out=$BIN/velero-$VELERO dir key
  key="$VELERO $VELERO_AWS_PLUGIN $(sha256sum "$HERE/go/velero/go.mod" | cut -c1-16)"
  if stamp_ok "$out" "$key"; then log "velero $VELERO: cached"; return; fi
  dir=$(wrapper_src velero)
  mkdir -p "$out/plugins"
  (cd "$dir" && go get "github.com/vmware-tanzu/velero/cmd/velero@$VELERO" &&
    go build -trimpath -ldflags "-s -w -X github.com/vmware-tanzu/velero/pkg/buildinfo.Version=$VELERO \
      -X github.com/vmware-tanzu/velero/pkg/buildinfo.GitTreeState=clean" \
      -o "$out/velero" github.com/vmware-tanzu/velero/cmd/velero)
  GOBIN=$out/plugins go install -trimpath -ldflags "-s -w" \
    "github.com/vmware-tanzu/velero-plugin-for-aws/velero-plugin-for-aws@$VELERO_AWS_PLUGIN"
  echo "$key" >"$out/.stamp"
}

build_kopia() {
  local out=$BIN/kopia-$KOPIA dir key commit
  key="$KOPIA $(sha256sum "$HERE/go/kopia/go.mod" | cut -c1-16)"
  if stamp_ok "$out" "$key"; then log "kopia $KOPIA: cached"; return; fi
  dir=$(wrapper_src kopia)
  (cd "$dir" && go get "github.com/kopia/kopia@$KOPIA")
  commit=$(cd "$dir" && go mod download -json "github.com/kopia/kopia@$KOPIA" |
    python3 -c 'import json,sys; print(json.load(sys.stdin).get("Origin",{}).get("Hash",""))')
  (cd "$dir" && go build -trimpath -o "$out/kopia" -ldflags "-s -w \
    -X github.com/kopia/kopia/repo.BuildVersion=${KOPIA#v} -X github.com/kopia/kopia/repo.BuildInfo=$commit \
    -X github.com/kopia/kopia/repo.BuildGitHubRepo=kopia/kopia" github.com/kopia/kopia)
  "$out/kopia" --version >&2
  echo "$key" >"$out/.stamp"
}

# kmmover (mover/, standard library only): keyed by the hash of its sources, so an edit rebuilds.
mover_hash() {
  (cd "$HERE/.." && find mover -type f \( -name '*.go' -o -name go.mod \) -print0 | LC_ALL=C sort -z |
    xargs -0 sha256sum | sha256sum | cut -c1-16)
}

build_mover() {
  local h out
  h=$(mover_hash)
  out=$BIN/mover-$h
  if stamp_ok "$out" "$h"; then log "mover $h: cached"; return; fi
  mkdir -p "$out"
  (cd "$HERE/../mover" && go vet . && go build -trimpath -ldflags "-s -w" -o "$out/kmmover" .)
  echo "$h" >"$out/.stamp"
  find "$BIN" -maxdepth 1 -name 'mover-*' ! -name "mover-$h" -exec rm -rf {} + # earlier sources
}

build_minio() {
  local out=$BIN/minio-$MINIO
  if stamp_ok "$out" "$MINIO"; then log "minio $MINIO: cached"; return; fi
  mkdir -p "$out"
  GOBIN=$out go install -trimpath -ldflags "-s -w" "github.com/minio/minio@$MINIO"
  echo "$MINIO" >"$out/.stamp"
}

# --- CSI snapshots (hack/devenv/csi.py) ---------------------------------------------------
# Both sidecar repositories carry replace directives (`go install ...@v` refuses them, and a
# dependency's replaces are ignored), so their wrappers repeat upstream's replaces.
build_external_snapshotter() { # csi-snapshotter, snapshot-controller and the v1 snapshot CRDs
  local v=$EXTERNAL_SNAPSHOTTER out=$BIN/external-snapshotter-$EXTERNAL_SNAPSHOTTER dir key crd
  local m=github.com/kubernetes-csi/external-snapshotter
  key="$v $(sha256sum "$HERE/go/external-snapshotter/go.mod" | cut -c1-16)"
  if stamp_ok "$out" "$key"; then log "external-snapshotter $v: cached"; return; fi
  dir=$(wrapper_src external-snapshotter)
  (cd "$dir" && go get "$m/v8/cmd/csi-snapshotter@$v" "$m/v8/cmd/snapshot-controller@$v" "$m/client/v8@$v")
  mkdir -p "$out/crd"
  (cd "$dir" && go build -trimpath -ldflags "-s -w -X main.version=$v" -o "$out/" \
    "$m/v8/cmd/csi-snapshotter" "$m/v8/cmd/snapshot-controller")
  # the CRDs live in the client module (upstream's ./client), not in the v8 module's zip
  crd=$(cd "$dir" && go mod download -json "$m/client/v8@$v" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')/config/crd
  install -m 0644 "$crd"/snapshot.storage.k8s.io_*.yaml "$out/crd/"
  "$out/csi-snapshotter" --version >&2
  echo "$key" >"$out/.stamp"
}

build_external_provisioner() {
  local v=$EXTERNAL_PROVISIONER out=$BIN/external-provisioner-$EXTERNAL_PROVISIONER dir key
  local m=github.com/kubernetes-csi/external-provisioner/v5
  key="$v $(sha256sum "$HERE/go/external-provisioner/go.mod" | cut -c1-16)"
  if stamp_ok "$out" "$key"; then log "external-provisioner $v: cached"; return; fi
  dir=$(wrapper_src external-provisioner)
  (cd "$dir" && go get "$m/cmd/csi-provisioner@$v")
  mkdir -p "$out"
  (cd "$dir" && go build -trimpath -ldflags "-s -w -X main.version=$v" -o "$out/" "$m/cmd/csi-provisioner")
  "$out/csi-provisioner" --version >&2
  echo "$key" >"$out/.stamp"
}

csi_source() { # name module version -> a writable copy of that tag's source tree (with vendor/)
  local name=$1 mod=$2 v=$3 dst=$CACHE/src/$1-$3 dir sums tgz
  rm -rf "$dst"
  if dir=$(cd "$CACHE/src" && GOFLAGS= go mod download -json "$mod@$v" 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])' 2>/dev/null); then
    cp -r "$dir" "$dst" && chmod -R u+w "$dst" || return 1
    log "$name $v: source from the module proxy"
  else
    tgz=$THIRD_PARTY/$name-$v.tar.gz sums=$THIRD_PARTY/SHA256SUMS
    if [[ ! -f $tgz || ! -f $sums ]]; then
      log "$name $v: the module proxy refuses it and $tgz (or $sums) is missing" \
        "(set KUBE_MIGRATE_THIRD_PARTY to the folder holding it)"
      return 1
    fi
    (cd "$THIRD_PARTY" && grep -E "^[0-9a-f]{64}  $name-$v\.tar\.gz$" SHA256SUMS | sha256sum -c --quiet -) >&2 ||
      { log "$name $v: $tgz does not match $sums"; return 1; }
    mkdir -p "$dst" && tar xzf "$tgz" -C "$dst" --strip-components=1 || return 1
    log "$name $v: the module proxy refuses it; source from $tgz (sha256 checked)"
  fi
  echo "$dst"
}

build_csi_vendored() { # name module version ./cmd/<binary>: built from the tag's own vendor/
  local name=$1 mod=$2 v=$3 cmd=$4 out=$BIN/$1-$3 dir flags=(GOFLAGS=-mod=vendor GOPROXY=off)
  if stamp_ok "$out" "$v"; then log "$name $v: cached"; return; fi
  dir=$(csi_source "$name" "$mod" "$v")
  [[ -f $dir/vendor/modules.txt ]] || flags=(GOFLAGS=-mod=mod)
  mkdir -p "$out"
  (cd "$dir" && env "${flags[@]}" go build -trimpath -ldflags "-s -w -X main.version=$v" -o "$out/" "$cmd")
  "$out/$(basename "$cmd")" --version >&2
  echo "$v" >"$out/.stamp"
}

components=("$@")
all=(etcd kwok k8s-older k8s-primary kubelet-older kubelet-primary local-path-provisioner minio velero kopia mover
  external-snapshotter external-provisioner csi-driver-host-path node-driver-registrar)
[[ ${#components[@]} -gt 0 ]] || components=("${all[@]}")
for c in "${components[@]}"; do
  case $c in
  k8s-primary) timed "k8s-$K8S_PRIMARY" build_k8s "$K8S_PRIMARY" ;;
  k8s-older) timed "k8s-$K8S_OLDER" build_k8s "$K8S_OLDER" ;;
  kubelet-primary) timed "kubelet-$K8S_PRIMARY" build_kubelet "$K8S_PRIMARY" ;;
  kubelet-older) timed "kubelet-$K8S_OLDER" build_kubelet "$K8S_OLDER" ;;
  local-path-provisioner) timed "local-path-provisioner-$LOCAL_PATH_PROVISIONER" build_local_path_provisioner ;;
  etcd) timed "etcd-$ETCD" build_etcd ;;
  kwok) timed "kwok-$KWOK" build_kwok ;;
  minio) timed "minio" build_minio ;;
  velero) timed "velero-$VELERO" build_velero ;;
  kopia) timed "kopia-$KOPIA" build_kopia ;;
  mover) timed "mover" build_mover ;;
  external-snapshotter) timed "external-snapshotter-$EXTERNAL_SNAPSHOTTER" build_external_snapshotter ;;
  external-provisioner) timed "external-provisioner-$EXTERNAL_PROVISIONER" build_external_provisioner ;;
  csi-driver-host-path)
    timed "csi-driver-host-path-$CSI_HOSTPATH" build_csi_vendored csi-driver-host-path \
      github.com/kubernetes-csi/csi-driver-host-path "$CSI_HOSTPATH" ./cmd/hostpathplugin
    ;;
  node-driver-registrar)
    timed "node-driver-registrar-$CSI_NODE_DRIVER_REGISTRAR" build_csi_vendored node-driver-registrar \
      github.com/kubernetes-csi/node-driver-registrar "$CSI_NODE_DRIVER_REGISTRAR" ./cmd/csi-node-driver-registrar
    ;;
  *) echo "hack/build.sh: unknown component '$c' (${all[*]})" >&2; exit 2 ;;
  esac
done
log "binaries in $BIN"
