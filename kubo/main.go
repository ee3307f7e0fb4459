// Command ipfs is Kubo v0.43.1 (the reference IPFS implementation), built from the Go module proxy so that
// the snapshot store for IPFS (src/snapshots/kubo.store.ts) is tested against a real daemon.
//
// Kubo's own go.mod replaces github.com/libp2p/go-libp2p with a fork that the proxy does not serve, and
// `go install` refuses modules with replace directives; this module imports Kubo's command package
// instead and raises go-libp2p to v0.52.0, the release that carries what the fork patched.
//
// Usage (the same as Kubo's `ipfs`):
//
//	IPFS_PATH=.data/kubo ipfs init --profile test
//	IPFS_PATH=.data/kubo ipfs daemon --offline
package main

import (
	"os"

	"github.com/ipfs/kubo/cmd/ipfs/kubo"
)

func main() {
	os.Exit(kubo.Start(kubo.BuildDefaultEnv))
}
