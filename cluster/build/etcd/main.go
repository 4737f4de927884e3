// Command etcd is upstream etcd's server entry point, built from its Go module
// because the Debian etcd (3.4.23) lacks health endpoints Kubernetes 1.31+ uses.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
