#!/usr/bin/env bash
# Install the Debian packages the local cluster needs, if any is missing (idempotent).
set -euo pipefail
# Install the missing ones of PROBE:PACKAGE pairs (a command, or an absolute path).
install_missing() {
  local need=() pair probe pkg
  for pair in "$@"; do
    probe=${pair%%:*} pkg=${pair#*:}
    if [[ $probe == /* ]]; then [[ -e $probe ]] || need+=("$pkg"); else command -v "$probe" >/dev/null || need+=("$pkg"); fi
  done
  if ((${#need[@]})); then
    echo "[deps] installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
}
# On every cluster: the e2e suite's browser (the portal is tested in headless Chromium),
# npm, which fetches the portal's pinned xterm.js, Maven, which fetches Kafka's jars for
# the streaming lab's image (images/kafka/pom.xml), and git, which the gitops lab's solution
# pushes with (and the git-server's unit test runs).
install_missing chromium:chromium chromedriver:chromium-driver npm:npm mvn:maven git:git
# On kind or a cluster of the user's own, nothing of the local cluster is needed.
if [[ -n ${ROADLAB_KUBECONFIG:-} || ${ROADLAB_CLUSTER:-} == kind ]]; then exit 0; fi
install_missing containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins \
  iptables:iptables ipset:ipset conntrack:conntrack socat:socat buildah:buildah openssl:openssl \
  gcc:gcc /usr/lib/x86_64-linux-gnu/libc.a:libc6-dev curl:curl ip:iproute2 \
  debootstrap:debootstrap
