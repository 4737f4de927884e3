#!/usr/bin/env bash
# Start the local single-node cluster (idempotent) and print its KUBECONFIG path.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$CLUSTER_DIR/images.sh"
source "$CLUSTER_DIR/pki.sh"
source "$CLUSTER_DIR/metrics-server.sh"
source "$CLUSTER_DIR/istio-crds.sh"
source "$CLUSTER_DIR/flux.sh"
source "$CLUSTER_DIR/istio.sh"
source "$CLUSTER_DIR/network-policy.sh"

[[ $EUID -eq 0 ]] || die "the local cluster needs root (containers, iptables, mounts)"

setup_network() {
  sysctl -qw net.ipv4.ip_forward=1
  sysctl -qw net.bridge.bridge-nf-call-iptables=1
  if ! ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    ip link add "$NODE_BRIDGE" type bridge
    ip addr add "$NODE_IP/32" dev "$NODE_BRIDGE"
  fi
  ip link set "$NODE_BRIDGE" up
  # Pods may talk to each other, to Services and to this node, never beyond it. In the
  # mangle table, which packets pass before the filter table: kube-router's chain goes first
  # in filter FORWARD and ACCEPTs what the NetworkPolicies allow, so a rule after it would
  # never see that traffic.
  iptables -D FORWARD -i "$POD_BRIDGE" -j ROADLAB-EGRESS 2>/dev/null || true # where earlier versions put it
  iptables -t mangle -N ROADLAB-EGRESS 2>/dev/null || iptables -t mangle -F ROADLAB-EGRESS
  iptables -t mangle -A ROADLAB-EGRESS -o "$POD_BRIDGE" -j RETURN
  iptables -t mangle -A ROADLAB-EGRESS -j DROP
  iptables -t mangle -C FORWARD -i "$POD_BRIDGE" -j ROADLAB-EGRESS 2>/dev/null ||
    iptables -t mangle -I FORWARD 1 -i "$POD_BRIDGE" -j ROADLAB-EGRESS
}

write_configs() {
  mkdir -p "$STATE_DIR/cni/net.d" "$STATE_DIR/kubelet" "$RUN_DIR/containerd"
  cat >"$STATE_DIR/containerd.toml" <<TOML
version = 2
root = "$STATE_DIR/containerd"
state = "$RUN_DIR/containerd/state"
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$STATE_DIR/bin/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE_DIR/cni/net.d"
TOML
  install -D -m 0755 "$CLUSTER_DIR/runc-wrapper" "$STATE_DIR/bin/runc"
  cat >"$STATE_DIR/cni/net.d/10-roadlab.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "roadlab",
  "plugins": [
    {"type": "bridge", "bridge": "$POD_BRIDGE", "isGateway": true, "ipMasq": false,
     "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$STATE_DIR/cni/ipam",
              "ranges": [[{"subnet": "$NODE_POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
  # Pods with dnsPolicy Default (CoreDNS itself) get no resolver outside the cluster.
  echo "nameserver 127.0.0.1" >"$STATE_DIR/resolv.conf"
  cat >"$STATE_DIR/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI_DIR/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDNS: [$DNS_SVC_IP]
clusterDomain: cluster.local
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
resolvConf: $STATE_DIR/resolv.conf
tlsCertFile: $PKI_DIR/kubelet-serving.crt
tlsPrivateKeyFile: $PKI_DIR/kubelet-serving.key
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
# Images cannot be pulled again here, so the kubelet must never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 200Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
serializeImagePulls: false
YAML
  cat >"$STATE_DIR/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE_DIR/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $CLUSTER_CIDR
hostnameOverride: $NODE_NAME
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack: {maxPerCore: 0, min: 0}
YAML
}

# holder_pid SS_ARGS...: the pid of the process `ss -Hl SS_ARGS` finds listening (empty if none;
# `|| true`: with pipefail, grep finding nothing would otherwise end the script).
holder_pid() {
  ss -Hlp "$@" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true
}

# refuse_other_cluster: stop with the reason when a port or the containerd socket this cluster
# needs is held by a process it did not start: most often another local cluster with its own
# state dir (a cold check's clone, another checkout) left running. Starting beside it gave
# pods with the same addresses on the same bridge and a Deployment that never got Ready.
refuse_other_cluster() {
  local name what pid
  local -A filters=(
    [etcd]="-tn sport = :2379" [kube-apiserver]="-tn sport = :$API_PORT"
    [kubelet]="-tn sport = :10250" [containerd]="-x src $CONTAINERD_SOCK"
  )
  for name in "${!filters[@]}"; do
    what=${filters[$name]}
    # Word splitting wanted: the options and the filter are separate arguments of ss.
    # shellcheck disable=SC2086
    pid=$(holder_pid $what)
    [[ -n $pid ]] || continue
    daemon_running "$name" && [[ $(cat "$PID_DIR/$name.pid") == "$pid" ]] && continue
    die "what $name listens on (${what#* }) is held by pid $pid, which this cluster" \
      "(state $STATE_DIR) did not start: $(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -c1-300)." \
      "If it is another local cluster, stop it with: ROADLAB_STATE=<its state dir> cluster/down.sh"
  done
}

start_control_plane() {
  local k8s etcd
  k8s=$(k8s_bin_dir) etcd=$(etcd_bin_dir)
  start_daemon etcd "$etcd/etcd" --name roadlab --data-dir "$STATE_DIR/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster roadlab=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
    --quota-backend-bytes 4294967296 --log-level warn
  wait_for "etcd" 60 curl -sf http://127.0.0.1:2381/health

  start_daemon kube-apiserver "$k8s/kube-apiserver" \
    --etcd-servers http://127.0.0.1:2379 --advertise-address "$NODE_IP" --secure-port "$API_PORT" \
    --client-ca-file "$PKI_DIR/ca.crt" \
    --tls-cert-file "$PKI_DIR/apiserver.crt" --tls-private-key-file "$PKI_DIR/apiserver.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI_DIR/sa.pub" --service-account-signing-key-file "$PKI_DIR/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --allow-privileged=true \
    --kubelet-client-certificate "$PKI_DIR/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI_DIR/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$PKI_DIR/ca.crt" \
    --kubelet-preferred-address-types InternalIP \
    --requestheader-client-ca-file "$PKI_DIR/front-proxy-ca.crt" \
    --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI_DIR/front-proxy-client.crt" \
    --proxy-client-key-file "$PKI_DIR/front-proxy-client.key" \
    --enable-aggregator-routing=true --profiling=false
  wait_for "kube-apiserver" 120 kubectl_local get --raw /readyz

  start_daemon kube-controller-manager "$k8s/kube-controller-manager" \
    --kubeconfig "$STATE_DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$STATE_DIR/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$STATE_DIR/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false \
    --cluster-signing-cert-file "$PKI_DIR/ca.crt" --cluster-signing-key-file "$PKI_DIR/ca.key" \
    --root-ca-file "$PKI_DIR/ca.crt" --service-account-private-key-file "$PKI_DIR/sa.key" \
    --use-service-account-credentials=true \
    --allocate-node-cidrs=true --cluster-cidr "$CLUSTER_CIDR" --node-cidr-mask-size 24 \
    --service-cluster-ip-range "$SERVICE_CIDR" --controllers '*,bootstrapsigner,tokencleaner'
  start_daemon kube-scheduler "$k8s/kube-scheduler" \
    --kubeconfig "$STATE_DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig "$STATE_DIR/scheduler.kubeconfig" \
    --authorization-kubeconfig "$STATE_DIR/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false
}

start_node() {
  local k8s
  k8s=$(k8s_bin_dir)
  start_daemon containerd containerd --config "$STATE_DIR/containerd.toml"
  wait_for "containerd" 60 ctr --address "$CONTAINERD_SOCK" version
  import_images
  start_daemon kubelet "$k8s/kubelet" --config "$STATE_DIR/kubelet.yaml" \
    --kubeconfig "$STATE_DIR/kubelet-client.kubeconfig" \
    --root-dir "$STATE_DIR/kubelet" --cert-dir "$STATE_DIR/kubelet/pki" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP"
  start_daemon kube-proxy "$k8s/kube-proxy" --config "$STATE_DIR/kube-proxy.yaml"
}

# import_images: every cached image tar of the cluster and of the project goes into containerd.
import_images() {
  local tar
  for tar in "$CACHE_DIR"/images/*.tar; do
    [[ -e $tar ]] || continue
    import_image "$tar"
  done
}

start_addons() {
  wait_for "node $NODE_NAME to register" 120 kubectl_local get node "$NODE_NAME"
  sed -e "s|@DNS_SVC_IP@|$DNS_SVC_IP|g" -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|g" \
    "$CLUSTER_DIR/manifests/coredns.yaml" | kubectl_local apply -f - >/dev/null
  kubectl_local wait --for=condition=Ready "node/$NODE_NAME" --timeout=180s >/dev/null
  # NetworkPolicies enforced before any lab exists: the labs' default-deny policies mean
  # something only with a controller that enforces them.
  start_network_policy_controller kubectl_local
  kubectl_local -n kube-system rollout status deployment/coredns --timeout=180s >/dev/null
  # metrics-server: `kubectl top` and HorizontalPodAutoscalers (the hpa lab) need it.
  install_metrics_server "$METRICS_SERVER_IMAGE" Never "$METRICS_SERVER_KUBELET_CA" kubectl_local
  # Istio's CRDs: the istio lab's prerequisite (its API only; no mesh runs here).
  install_istio_crds kubectl_local
  # Flux (source- and kustomize-controller): GitOps, locked down to apply as a ServiceAccount
  # of each Kustomization's own namespace.
  install_flux "$FLUX_SOURCE_CONTROLLER_IMAGE" "$FLUX_KUSTOMIZE_CONTROLLER_IMAGE" Never kubectl_local
  # Istio's data plane (istio-cni chained into the pod network, istiod, the injector): the
  # istio lab's pods and its meshed check Jobs get sidecars.
  install_istio kubectl_local
}

main() {
  "$CLUSTER_DIR/deps.sh"
  "$CLUSTER_DIR/build.sh"
  mkdir -p "$STATE_DIR" "$RUN_DIR"
  refuse_other_cluster
  setup_network
  make_pki
  write_configs
  start_control_plane
  start_node
  start_addons
  log "cluster is up; node $NODE_NAME Ready"
  echo "$KUBECONFIG_PATH"
}

main "$@"
