package fuse_test

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/shoalfs/shoal/fuse"
	"github.com/shoalfs/shoal/fuse/fusetest"
	"github.com/shoalfs/shoal/internal/cluster/clustertest"
)

// TestMain runs a helper instead of the tests when the test binary is
// re-executed as a subprocess (see helper_test.go).
func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode, os.Args[len(os.Args)-1]))
	}
	os.Exit(m.Run())
}

// mountCluster starts a cluster and mounts it with the default options.
func mountCluster(t *testing.T) (*clustertest.Cluster, string) {
	t.Helper()
	fusetest.Require(t)
	c := clustertest.New(t, clustertest.Options{})
	return c, fusetest.Mount(t, c.ManagerAddr(), fuse.DefaultOptions())
}

// mkdir makes a fresh directory for a subtest.
func mkdir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func join(dir string, elem ...string) string {
	return filepath.Join(append([]string{dir}, elem...)...)
}
