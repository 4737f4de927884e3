#!/usr/bin/env bash
# Install the Debian packages the local cluster needs, if any is missing (idempotent).
set -euo pipefail
# On kind or a cluster of the user's own, nothing of the local cluster is needed.
if [[ -n ${ROADLAB_KUBECONFIG:-} || ${ROADLAB_CLUSTER:-} == kind ]]; then exit 0; fi
need=()
for pair in containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins \
  iptables:iptables conntrack:conntrack socat:socat buildah:buildah openssl:openssl \
  gcc:gcc /usr/lib/x86_64-linux-gnu/libc.a:libc6-dev curl:curl ip:iproute2 \
  debootstrap:debootstrap; do
  probe=${pair%%:*} pkg=${pair#*:}
  if [[ $probe == /* ]]; then [[ -e $probe ]] || need+=("$pkg"); else command -v "$probe" >/dev/null || need+=("$pkg"); fi
done
if ((${#need[@]})); then
  echo "[deps] installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
