# The local cluster's NetworkPolicy enforcement (sourced after lib.sh by up.sh and down.sh):
# kube-router in firewall-only mode, a host daemon like kube-proxy. The bridge CNI enforces
# no policy by itself; kube-router's policy controller filters bridged pod traffic in
# iptables (physdev match, with bridge-nf-call-iptables=1, which setup_network sets) and
# ipsets. It REJECTs what no policy allows, so a refused connection fails at once.
# shellcheck shell=bash

KUBE_ROUTER_HEALTH_PORT=20244

# network_policy_enforced: kube-router answers its health check and its chain is in FORWARD.
# (It programs a new pod's firewall within a sync, 88 ms median over the e2e suite.)
network_policy_enforced() {
  curl -sf "http://127.0.0.1:$KUBE_ROUTER_HEALTH_PORT/healthz" >/dev/null &&
    iptables -S FORWARD 2>/dev/null | grep -q -- "-j KUBE-ROUTER-FORWARD\$"
}

# start_network_policy_controller KUBECTL...: its read-only RBAC, then the daemon (the
# version build.sh linked into the cache's bin/).
start_network_policy_controller() {
  "$@" apply -f "$CLUSTER_DIR/manifests/kube-router.yaml" >/dev/null
  # Running but its rules gone (an iptables flush): it would put them back only at its next
  # periodic sync, minutes away; a restart syncs at once.
  if daemon_running kube-router && ! network_policy_enforced; then
    log "kube-router runs but its rules are gone: restarting it"
    stop_daemon kube-router
  fi
  # --run-router=false --run-service-proxy=false --enable-cni=false: routes, Services and
  # the pod network stay with the node's bridge and kube-proxy; kube-router only filters.
  start_daemon kube-router "$CACHE_DIR/bin/kube-router" --kubeconfig "$STATE_DIR/kube-router.kubeconfig" \
    --hostname-override "$NODE_NAME" --run-firewall=true --run-router=false \
    --run-service-proxy=false --enable-cni=false --enable-ipv6=false \
    --service-cluster-ip-range "$SERVICE_CIDR" --health-port "$KUBE_ROUTER_HEALTH_PORT" \
    --metrics-port 0 --v 1
  wait_for "kube-router (NetworkPolicy enforcement)" 120 network_policy_enforced
}

# remove_network_policy_state: the ipsets kube-router made (its iptables chains are KUBE-*
# and go with the others); run after the chains that reference them are gone.
remove_network_policy_state() {
  command -v ipset >/dev/null || return 0
  local set
  for set in $(ipset list -n 2>/dev/null | grep -E '^(KUBE-|kube-router-)'); do
    ipset destroy "$set" 2>/dev/null || true
  done
}
