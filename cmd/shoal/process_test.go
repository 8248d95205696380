package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoalfs/shoal/client"
)

// procCluster is a manager and chunkservers running as real processes.
type procCluster struct {
	manager     *proc
	managerAddr string
	managerDir  string
	chunk       []*proc
	chunkArgs   [][]string
}

func startProcCluster(t *testing.T, chunkservers int, managerFlags ...string) *procCluster {
	t.Helper()
	dir := t.TempDir()
	pc := &procCluster{managerAddr: freeAddr(t), managerDir: filepath.Join(dir, "m")}
	pc.startManager(t, managerFlags...)
	for i := 0; i < chunkservers; i++ {
		args := []string{"chunkserver", "--manager", pc.managerAddr, "--listen", freeAddr(t),
			"--data", filepath.Join(dir, fmt.Sprintf("cs%d", i)), "--heartbeat", "200ms", "--log-level", "debug"}
		pc.chunkArgs = append(pc.chunkArgs, args)
		pc.chunk = append(pc.chunk, startProc(t, fmt.Sprintf("chunkserver %d", i), args...))
	}
	pc.waitLive(t, chunkservers)
	return pc
}

func (pc *procCluster) startManager(t *testing.T, flags ...string) {
	t.Helper()
	args := append([]string{"manager", "--listen", pc.managerAddr, "--http", "", "--data", pc.managerDir, "--log-level", "debug"}, flags...)
	pc.manager = startProc(t, "manager", args...)
}

func (pc *procCluster) waitLive(t *testing.T, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d live chunkservers", n), func() (bool, error) {
		var st client.StatusReport
		if err := shoalJSON(t, &st, "status", "--manager", pc.managerAddr); err != nil {
			return false, err
		}
		live := 0
		for _, nd := range st.Nodes {
			if nd.State == "live" && nd.CapacityBytes > 0 {
				live++
			}
		}
		return live == n, fmt.Errorf("%d of %d live: %+v", live, n, st.Nodes)
	})
}

// TestProcessCluster runs the daemons as a user would: separate processes,
// talking over 127.0.0.1, driven through the CLI.
func TestProcessCluster(t *testing.T) {
	pc := startProcCluster(t, 3, "--chunk-size", "1MiB", "--replication", "3")
	m := pc.managerAddr

	// A file of several chunks goes in and comes back byte for byte.
	local := t.TempDir()
	data := make([]byte, 5<<20+12345)
	rand.Read(data)
	src := filepath.Join(local, "big.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	mustShoal(t, "mkdir", "--manager", m, "-p", "/isos/old")
	mustShoal(t, "put", "--manager", m, src, "/isos/big.bin")
	out := filepath.Join(local, "out.bin")
	mustShoal(t, "get", "--manager", m, "/isos/big.bin", out)
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("get returned %d bytes that differ from the %d put", len(got), len(data))
	}
	if cat := mustShoal(t, "cat", "--manager", m, "/isos/big.bin"); cat != string(data) {
		t.Fatalf("cat returned %d bytes that differ from the %d put", len(cat), len(data))
	}

	// Every chunk is on 3 distinct nodes.
	var fr client.FsckReport
	if err := shoalJSON(t, &fr, "fsck", "--manager", m); err != nil {
		t.Fatal(err)
	}
	if fr.Files != 1 || fr.Chunks != 6 || fr.Healthy != 6 || !fr.OK() {
		t.Fatalf("fsck after put: %+v, want 1 file, 6 healthy chunks", fr)
	}

	// Bad input gets a clear message and a failing exit status, and the
	// cluster goes on serving.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cat", "--manager", m, "/isos/nope"}, "no such file or directory"},
		{[]string{"get", "--manager", m, "/nope", filepath.Join(local, "x")}, "no such file or directory"},
		{[]string{"mkdir", "--manager", m, "/" + strings.Repeat("n", 256)}, "file name too long"},
		{[]string{"mkdir", "--manager", m, "/isos"}, "file exists"},
		{[]string{"rm", "--manager", m, "/isos"}, "is a directory"},
		{[]string{"put", "--manager", m, filepath.Join(local, "missing"), "/x"}, "no such file or directory"},
	} {
		args := tc.args
		if _, err := shoal(t, args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("shoal %q: %v; want an error mentioning %q", args, err, tc.want)
		}
	}

	ls := mustShoal(t, "ls", "--manager", m, "-l", "/isos")
	if !strings.Contains(ls, "big.bin") || !strings.Contains(ls, fmt.Sprint(len(data))) || !strings.Contains(ls, "drwx") {
		t.Fatalf("ls -l /isos:\n%s", ls)
	}
	mustShoal(t, "mv", "--manager", m, "/isos/big.bin", "/isos/old")
	if _, err := shoal(t, "cat", "--manager", m, "/isos/big.bin"); err == nil {
		t.Fatal("cat of a moved file succeeded")
	}

	// kill -9 the manager and start it again: everything is still there.
	pc.manager.kill()
	pc.startManager(t)
	pc.waitLive(t, 3)
	mustShoal(t, "get", "--manager", m, "/isos/old/big.bin", out)
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Fatal("file differs after a manager kill -9 and restart")
	}

	// A chunkserver restarts with its node id and its chunks.
	before := mustShoal(t, "status", "--manager", m, "--json")
	pc.chunk[0].stop()
	pc.chunk[0] = startProc(t, "chunkserver 0 again", pc.chunkArgs[0]...)
	pc.waitLive(t, 3)
	var st client.StatusReport
	if err := shoalJSON(t, &st, "status", "--manager", m); err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 3 {
		t.Fatalf("after a chunkserver restart the manager knows %d nodes, want 3 (same id):\nbefore %s", len(st.Nodes), before)
	}
	for _, n := range st.Nodes {
		if n.Chunks != 6 {
			t.Fatalf("node %s reports %d chunks after restart, want 6", n.ID, n.Chunks)
		}
	}

	mustShoal(t, "rm", "--manager", m, "-r", "/isos")
	if _, err := shoal(t, "ls", "--manager", m, "/isos"); err == nil {
		t.Fatal("ls of a removed directory succeeded")
	}

	// SIGTERM stops every daemon cleanly.
	for _, c := range pc.chunk {
		c.stop()
	}
	pc.manager.stop()
}

// TestCLIErrors checks that bad input gets a clear message and exit status.
func TestCLIErrors(t *testing.T) {
	dead := freeAddr(t) // nothing listens here
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, "unknown command"},
		{"bad flag", []string{"status", "--bogus"}, "flag provided but not defined"},
		{"manager without data", []string{"manager"}, "--data is required"},
		{"bad size", []string{"manager", "--data", t.TempDir(), "--chunk-size", "lots"}, "bad size"},
		{"unreachable manager", []string{"ls", "--manager", dead, "--op-timeout", "1s", "/"}, "manager at " + dead + " unreachable"},
		{"relative path", []string{"ls", "--manager", dead, "rel/path"}, "absolute"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := shoal(t, tc.args...)
			if err == nil {
				t.Fatalf("shoal %v succeeded", tc.args)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("shoal %v: %v; want the message to mention %q", tc.args, err, tc.want)
			}
		})
	}
}
