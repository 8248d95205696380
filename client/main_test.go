package client

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test stops what it starts: clients, files' goroutines, fake
// servers, real clusters and their connections.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Badger (in the real clusters' manager) and glog-style loggers
		// start package-level goroutines.
		goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("github.com/dgraph-io/ristretto/v2/z.(*AllocatorPool).freeupAllocators"),
	)
}
