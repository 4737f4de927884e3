# Istio's CustomResourceDefinitions (sourced after lib.sh by up.sh and kind.sh): the istio
# lab's prerequisite. Only the API (VirtualService, DestinationRule, PeerAuthentication, ...)
# is installed, taken from Istio's own Go module istio.io/api; no istiod, no data plane.
# shellcheck shell=bash

# istio_crds_file: the CRD manifest of ISTIO_API_VERSION, fetched once into the cache.
istio_crds_file() {
  local file=$CACHE_DIR/istio/api-$ISTIO_API_VERSION/customresourcedefinitions.gen.yaml dir
  if [[ ! -s $file ]]; then
    dir=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "istio.io/api@v$ISTIO_API_VERSION" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') ||
      die "cannot download the Go module istio.io/api@v$ISTIO_API_VERSION"
    mkdir -p "$(dirname "$file")"
    cp "$dir/kubernetes/customresourcedefinitions.gen.yaml" "$file.tmp"
    mv "$file.tmp" "$file"
  fi
  echo "$file"
}

# install_istio_crds KUBECTL...: apply the CRDs (server-side: some exceed the client-side
# last-applied annotation's size) and wait until they are served.
install_istio_crds() {
  local file
  file=$(istio_crds_file)
  "$@" apply --server-side --force-conflicts -f "$file" >/dev/null
  "$@" wait --for=condition=Established --timeout=60s \
    crd/virtualservices.networking.istio.io crd/destinationrules.networking.istio.io \
    crd/peerauthentications.security.istio.io >/dev/null
}
