#!/usr/bin/env bash
# Install the Debian packages a local test plane's real node runs on, and the report tests'
# tools, if any is missing.
#
# The node is a kubelet (built by hack/build.sh) on Debian's containerd + runc; pods get a
# loopback-only network from the `loopback` CNI plugin (/usr/lib/cni/loopback, package
# containernetworking-plugins); the images are built without a registry from the static
# busybox binary (/bin/busybox, package busybox-static, see hack/devenv/images.py).
# The report's tests (tests/test_report_pictures.py) draw the restore graph with Graphviz
# (`dot`, package graphviz) and open report.html in a headless browser (package chromium).
# The Containerfile is built in the tests by buildah (package buildah: rootless-friendly,
# no daemon, `FROM scratch` needs no registry).
# A warm run is one dpkg-query; `apt-get update` runs only when something must be installed.
# Runs as root (no sudo); on a machine without systemd no package starts a daemon.
#
# usage: hack/host-deps.sh
set -euo pipefail
PACKAGES=(containerd runc busybox-static containernetworking-plugins chromium graphviz buildah)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [[ $status == installed ]] || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "[host-deps] installed: ${PACKAGES[*]}" >&2
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "[host-deps] missing ${missing[*]}: run as root (apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "[host-deps] installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
for f in /usr/bin/containerd /usr/bin/ctr /usr/sbin/runc /bin/busybox /usr/lib/cni/loopback \
  /usr/bin/chromium /usr/bin/dot; do
  [[ -x $f ]] || {
    echo "[host-deps] expected $f after install" >&2
    exit 1
  }
done
