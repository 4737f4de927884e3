# Certificates and kubeconfigs of the local cluster (sourced after lib.sh).
# shellcheck shell=bash

PKI_DIR=$STATE_DIR/pki

# issue_cert NAME CN [O] [SANS] [CA]: a key and a certificate signed by CA (default "ca").
issue_cert() {
  local name=$1 cn=$2 org=${3:-} sans=${4:-} ca=${5:-ca}
  [[ -s $PKI_DIR/$name.crt ]] && return
  local subj="/CN=$cn" ext=$PKI_DIR/$name.ext
  [[ -n $org ]] && subj="/O=$org$subj"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth,clientAuth"
    [[ -n $sans ]] && echo "subjectAltName=$sans"
  } >"$ext"
  openssl genrsa -out "$PKI_DIR/$name.key" 2048 2>/dev/null
  openssl req -new -key "$PKI_DIR/$name.key" -subj "$subj" -out "$PKI_DIR/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI_DIR/$name.csr" -CA "$PKI_DIR/$ca.crt" -CAkey "$PKI_DIR/$ca.key" \
    -CAcreateserial -days 365 -extfile "$ext" -out "$PKI_DIR/$name.crt" 2>/dev/null
  rm -f "$PKI_DIR/$name.csr" "$ext"
}

issue_ca() { # issue_ca NAME CN
  [[ -s $PKI_DIR/$1.crt ]] && return
  openssl genrsa -out "$PKI_DIR/$1.key" 2048 2>/dev/null
  openssl req -x509 -new -nodes -key "$PKI_DIR/$1.key" -subj "/CN=$2" -days 3650 \
    -out "$PKI_DIR/$1.crt" 2>/dev/null
}

# write_kubeconfig FILE CERT_NAME: a kubeconfig that authenticates with PKI_DIR/CERT_NAME.*
write_kubeconfig() {
  local file=$1 cert=$2
  cat >"$file" <<KC
apiVersion: v1
kind: Config
clusters:
- name: roadlab-local
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 "$PKI_DIR/ca.crt")
users:
- name: $cert
  user:
    client-certificate-data: $(base64 -w0 "$PKI_DIR/$cert.crt")
    client-key-data: $(base64 -w0 "$PKI_DIR/$cert.key")
contexts:
- name: roadlab-local
  context: {cluster: roadlab-local, user: $cert}
current-context: roadlab-local
KC
  chmod 600 "$file"
}

make_pki() {
  mkdir -p "$PKI_DIR" && chmod 700 "$PKI_DIR"
  issue_ca ca roadlab-local-ca
  issue_ca front-proxy-ca roadlab-local-front-proxy-ca
  issue_cert apiserver kube-apiserver "" \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP,IP:$KUBERNETES_SVC_IP"
  issue_cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  issue_cert front-proxy-client front-proxy-client "" "" front-proxy-ca
  issue_cert admin kubernetes-admin system:masters
  issue_cert controller-manager system:kube-controller-manager
  issue_cert scheduler system:kube-scheduler
  issue_cert kube-proxy system:kube-proxy
  issue_cert kube-router system:kube-router
  issue_cert kubelet-client "system:node:$NODE_NAME" system:nodes
  issue_cert kubelet-serving "$NODE_NAME" "" "DNS:$NODE_NAME,DNS:localhost,IP:$NODE_IP,IP:127.0.0.1"
  [[ -s $PKI_DIR/sa.key ]] || {
    openssl genrsa -out "$PKI_DIR/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI_DIR/sa.key" -pubout -out "$PKI_DIR/sa.pub" 2>/dev/null
  }
  write_kubeconfig "$KUBECONFIG_PATH" admin
  local c
  for c in controller-manager scheduler kube-proxy kube-router kubelet-client; do
    write_kubeconfig "$STATE_DIR/$c.kubeconfig" "$c"
  done
}
