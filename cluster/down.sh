#!/usr/bin/env bash
# Stop the local cluster and remove everything it left: processes it started, pod
# network namespaces, mounts, cgroups, iptables rules and ipsets, bridges and its state.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$CLUSTER_DIR/network-policy.sh"

[[ $EUID -eq 0 ]] || die "the local cluster needs root"

ctr_() { ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }

# Network namespaces of our pod sandboxes, read before their tasks go away.
pod_netns() {
  local id
  for id in $(ctr_ containers ls -q 2>/dev/null); do
    ctr_ containers info "$id" 2>/dev/null | python3 -c '
import json, sys
spec = json.load(sys.stdin).get("Spec") or {}
for ns in (spec.get("linux") or {}).get("namespaces") or []:
    if ns.get("type") == "network" and ns.get("path", "").startswith("/var/run/netns/"):
        print(ns["path"])'
  done | sort -u
}

stop_containers() {
  daemon_running containerd || return 0
  local netns task
  netns=$(pod_netns)
  for task in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$task" 2>/dev/null || true; done
  sleep 1
  for task in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$task" >/dev/null 2>&1 || true; done
  stop_daemon containerd
  # Shims outlive containerd; ours are the ones talking to our socket.
  pkill -KILL -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" 2>/dev/null || true
  local ns
  for ns in $netns; do
    ns=${ns/#\/var\/run/\/run}
    umount "$ns" 2>/dev/null || true
    rm -f "$ns"
  done
}

unmount_under() { # unmount_under DIR: every mount below DIR, deepest first
  local dir=$1
  awk -v d="$dir" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

remove_cgroups() {
  local sub
  for sub in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d $sub ]] || continue
    find "$sub" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

remove_iptables() {
  local k8s
  k8s=$(k8s_bin_dir)
  [[ -x $k8s/kube-proxy ]] && "$k8s/kube-proxy" --cleanup >/dev/null 2>&1 || true
  local table
  for table in filter mangle; do # filter: where earlier versions of up.sh put it
    iptables -t "$table" -D FORWARD -i "$POD_BRIDGE" -j ROADLAB-EGRESS 2>/dev/null || true
    iptables -t "$table" -F ROADLAB-EGRESS 2>/dev/null && iptables -t "$table" -X ROADLAB-EGRESS 2>/dev/null || true
  done
  # Chains the kubelet, the CNI portmap plugin and kube-router made (only this cluster
  # uses them here).
  local chain
  for table in filter nat mangle; do
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && ($2 ~ /^KUBE-/ || $2 ~ /^CNI-/) {print $2}'); do
      iptables -t "$table" -S 2>/dev/null | awk -v c="$chain" '$1 == "-A" && $0 ~ ("-j " c "( |$)") {sub(/^-A/, "-D"); print}' |
        while read -r rule; do eval "iptables -t $table $rule" 2>/dev/null || true; done
    done
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && ($2 ~ /^KUBE-/ || $2 ~ /^CNI-/) {print $2}'); do
      iptables -t "$table" -F "$chain" 2>/dev/null || true
    done
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && ($2 ~ /^KUBE-/ || $2 ~ /^CNI-/) {print $2}'); do
      iptables -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
}

main() {
  local name
  for name in kube-router kube-proxy kubelet; do stop_daemon "$name"; done
  stop_containers
  for name in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_daemon "$name"; done
  unmount_under "$STATE_DIR"
  unmount_under "$RUN_DIR"
  remove_cgroups
  remove_iptables
  remove_network_policy_state
  ip link del "$POD_BRIDGE" 2>/dev/null || true
  ip link del "$NODE_BRIDGE" 2>/dev/null || true
  rm -rf "$STATE_DIR" "$RUN_DIR"
  log "cluster is down"
}

main "$@"
