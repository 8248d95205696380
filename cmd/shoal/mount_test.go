package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/shoalfs/shoal/fuse/fusetest"
	"github.com/shoalfs/shoal/internal/cluster/clustertest"
)

func TestMountErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dead := freeAddr(t) // nothing listens there
	cases := []struct {
		name  string
		args  []string
		usage bool
		want  string // in the error
	}{
		{name: "no mountpoint", args: nil, usage: true},
		{name: "two mountpoints", args: []string{dir, dir}, usage: true},
		{name: "unknown flag", args: []string{"--nope", dir}, usage: true},
		{name: "bad duration", args: []string{"--attr-timeout", "soon", dir}, usage: true},
		{name: "negative timeout", args: []string{"--entry-timeout", "-1s", dir}, usage: true},
		{name: "bad size", args: []string{"--write-buffer", "lots", dir}, usage: true},
		{name: "bad manager", args: []string{"--manager", "nohostport", dir}, usage: true},
		{name: "missing mountpoint", args: []string{filepath.Join(dir, "nope")}, want: "does not exist"},
		{name: "not a directory", args: []string{file}, want: "is not a directory"},
		{name: "unreachable manager", args: []string{"--manager", dead, "--op-timeout", "1s", dir}, want: "manager " + dead},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := env{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
			ctx, cancel := context.WithTimeout(context.Background(), clustertest.WaitTimeout)
			defer cancel()
			start := time.Now()
			err := runMount(ctx, e, tc.args)
			if err == nil {
				t.Fatal("runMount succeeded")
			}
			if errors.Is(err, errUsage) != tc.usage {
				t.Errorf("runMount: %v; usage error %v, want %v", err, errors.Is(err, errUsage), tc.usage)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("runMount: %v; want it to say %q", err, tc.want)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("runMount took %v to fail", took)
			}
		})
	}
}

// TestMountCommand runs `shoal mount` as a process against an in-process
// cluster: files written through it land in the cluster, and SIGTERM
// unmounts cleanly.
func TestMountCommand(t *testing.T) {
	fusetest.Require(t)
	c := clustertest.New(t, clustertest.Options{})
	mnt := t.TempDir()
	p := startMount(t, mnt, "--manager", c.ManagerAddr(), "--log-level", "debug")
	waitFor(t, "the mount", func() (bool, error) {
		select {
		case <-p.exited:
			t.Fatalf("shoal mount exited: %v\n%s", p.err, p.out.String())
		default:
		}
		return fusetest.Mounted(t, mnt), nil
	})
	data := bytes.Repeat([]byte("through the command "), 100000)
	if err := os.MkdirAll(filepath.Join(mnt, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "d", "f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	// Read it back past the kernel's page cache (O_DIRECT): the mount,
	// on the chunkservers' host, reads their replica files itself.
	f, err := os.OpenFile(filepath.Join(mnt, "d", "f"), os.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	buf := alignedBuf((len(data) + 8191) &^ 4095)
	n, err := io.ReadFull(f, buf)
	f.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) || !bytes.Equal(buf[:n], data) {
		t.Fatalf("O_DIRECT read back through the mount: %d bytes (%v), want %d", n, err, len(data))
	}
	if !strings.Contains(p.out.String(), "reading its replicas from their files") {
		t.Fatalf("the mount did not read the replicas from their files (--local-reads is on by default):\n%s", p.out.String())
	}
	p.stop()
	if fusetest.Mounted(t, mnt) {
		t.Fatalf("%s still mounted after SIGTERM", mnt)
	}
	var got bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), clustertest.WaitTimeout)
	defer cancel()
	if _, err := c.Client().Get(ctx, "/d/f", &got, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("the cluster has %d bytes, want %d", got.Len(), len(data))
	}
	c.WaitHealthy()
}

// TestMountCommandBusy sends SIGTERM while a file written through the
// mount is still open: the command commits it, detaches the busy mount,
// aborts it after --unmount-timeout, and exits cleanly.
func TestMountCommandBusy(t *testing.T) {
	fusetest.Require(t)
	c := clustertest.New(t, clustertest.Options{})
	mnt := t.TempDir()
	p := startMount(t, mnt, "--manager", c.ManagerAddr(), "--unmount-timeout", "1s")
	waitFor(t, "the mount", func() (bool, error) { return fusetest.Mounted(t, mnt), nil })
	f, err := os.Create(filepath.Join(mnt, "open"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := bytes.Repeat([]byte("buffered, never closed "), 50000)
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	p.stop()
	if fusetest.Mounted(t, mnt) {
		t.Fatalf("%s still mounted after SIGTERM", mnt)
	}
	f.Close()
	var got bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), clustertest.WaitTimeout)
	defer cancel()
	if _, err := c.Client().Get(ctx, "/open", &got, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("the cluster has %d bytes of the open file, want %d", got.Len(), len(data))
	}
}

// alignedBuf returns n bytes starting on a 4 KiB boundary, as O_DIRECT
// wants.
func alignedBuf(n int) []byte {
	b := make([]byte, n+4096)
	off := int(-uintptr(unsafe.Pointer(&b[0])) & 4095)
	return b[off : off+n]
}
