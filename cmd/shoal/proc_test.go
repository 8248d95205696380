package main

// Helpers for process-level tests: they build the real shoal binary and
// run its daemons as separate processes, as a user would. Every process a
// test starts is stopped by PID in t.Cleanup, even when the test fails.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoalfs/shoal/internal/cluster/clustertest"
)

var build struct {
	once sync.Once
	path string
	err  error
}

// shoalBinary builds cmd/shoal once per test binary run.
func shoalBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("process-level test: skipped under -short")
	}
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "shoal-bin-")
		if err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(dir, "shoal")
		out, err := exec.Command("go", "build", "-o", build.path, ".").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.path != "" {
		os.RemoveAll(filepath.Dir(build.path))
	}
	os.Exit(code)
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is a daemon started by a test.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
	err    error // Wait's result, set before exited closes
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startProc starts `shoal args...`. Its output is logged if the test fails.
func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, out: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(shoalBinary(t), args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Env = append(os.Environ(), "SHOAL_MANAGER=")
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- output of %s (pid %d):\n%s", name, p.cmd.Process.Pid, p.out.String())
		}
	})
	return p
}

// startMount starts `shoal mount args... mnt`. When the test ends, mnt
// is detached, pass or fail: a killed FUSE server leaves its mountpoint
// dead until it is unmounted.
func startMount(t *testing.T, mnt string, args ...string) *proc {
	t.Helper()
	p := startProc(t, "mount", append(append([]string{"mount"}, args...), mnt)...)
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	return p
}

// stop sends SIGTERM and waits for a clean exit (status 0).
func (p *proc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(clustertest.WaitTimeout):
		p.t.Fatalf("%s did not exit within %v of SIGTERM", p.name, clustertest.WaitTimeout)
	}
	if p.err != nil {
		p.t.Fatalf("%s exited uncleanly after SIGTERM: %v\n%s", p.name, p.err, p.out.String())
	}
}

// kill sends SIGKILL (kill -9) and waits for the process to be gone.
func (p *proc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Kill()
	<-p.exited
}

// shoal runs a client command to completion and returns its stdout.
func shoal(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clustertest.WaitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, shoalBinary(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("shoal %v: %w: %s", args, err, stderr.String())
	}
	return stdout.String(), err
}

// mustShoal is shoal that fails the test on error.
func mustShoal(t *testing.T, args ...string) string {
	t.Helper()
	out, err := shoal(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// shoalJSON runs a client command with --json and decodes its output.
func shoalJSON(t *testing.T, v any, args ...string) error {
	t.Helper()
	out, err := shoal(t, append(args, "--json")...)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return err
	}
	if jerr := json.Unmarshal([]byte(out), v); jerr != nil {
		return fmt.Errorf("decode %v output: %v (command error: %v)", args, jerr, err)
	}
	return nil
}

// waitFor polls cond until it is true or the deadline passes.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	err := clustertest.Poll(context.Background(), clustertest.WaitTimeout, func(context.Context) (bool, error) { return cond() })
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
