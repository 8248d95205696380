package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalfs/shoal/fuse/fusetest"
)

// runScript runs a demo to completion with a deadline and returns its
// output. The demos stop everything they start, even on failure; the
// deadline kills the whole process group if one hangs.
func runScript(t *testing.T, timeout time.Duration, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func mustContain(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Fatalf("output lacks %q:\n%s", w, out)
		}
	}
}

// TestDemo runs `shoal demo` as a user would and checks its story.
func TestDemo(t *testing.T) {
	bin := shoalBinary(t)
	fusetest.Require(t)
	out := runScript(t, 2*time.Minute, nil, bin, "demo", "--size", "48MiB", "--dir", t.TempDir())
	mustContain(t, out,
		"Mounted the cluster at",
		"Where its 3 chunks are",
		"as kill -9 would",
		"sha256 ok",
		"is dead after",
		"every chunk has 3 live replicas again",
		"every byte is there",
		"HEALTHY",
	)
}

// TestFailureDemo runs scripts/failure-demo.sh: real daemons, a real
// mount, kill -9 of a chunkserver, healing, sha256, and trimming.
func TestFailureDemo(t *testing.T) {
	bin := shoalBinary(t)
	fusetest.Require(t)
	script, err := filepath.Abs("../../scripts/failure-demo.sh")
	if err != nil {
		t.Fatal(err)
	}
	out := runScript(t, 4*time.Minute, []string{"SHOAL=" + bin, "SIZE_MIB=64", "CHUNK_SIZE=16MiB", "TMPDIR=" + t.TempDir()}, "bash", script)
	mustContain(t, out,
		"kill -9 chunkserver",
		"sha256 ok",
		"healed",
		"HEALTHY",
		"failure demo passed",
	)
}
