package client

// Short-circuit reads (localread.go) against real chunkservers on this
// host, and the checks of a replica file read that way.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/shoalfs/shoal/internal/localread"
	"github.com/shoalfs/shoal/internal/testlog"
)

// A client on the chunkservers' host reads replicas from their files:
// whole files, and ranges that start and end inside blocks and pages,
// come back byte for byte. A client with LocalReads off reads the same
// bytes over TCP.
func TestLocalReadsReadReplicaFiles(t *testing.T) {
	cl, c := realCluster(t, 3, 2)
	ctx := context.Background()
	data := randBytes(41, 3*mib+777) // 1 MiB chunks: three whole and a short one
	f := putOpen(t, c, data)
	ino := f.Ino()

	if got := readAll(t, c, ino, 128<<10); !bytes.Equal(got, data) {
		t.Fatalf("sequential read: %d bytes, equal prefix %v", len(got), bytes.HasPrefix(data, got))
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for range 50 {
		off := rng.Int64N(int64(len(data)))
		n := 1 + rng.Int64N(min(int64(len(data))-off, 200<<10))
		p := make([]byte, n)
		if _, err := f.ReadAt(ctx, p, off); err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("read [%d, %d): %v", off, off+n, err)
		}
		if !bytes.Equal(p, data[off:off+n]) {
			t.Fatalf("read [%d, %d): bytes differ", off, off+n)
		}
	}
	if n := c.local.reads.Load(); n == 0 {
		t.Fatal("no read was served from a replica file")
	}
	// The pages were read into huge-page buffers, and all of them are
	// back once the file is closed.
	if mapped, _ := c.runs.huge.Stats(); mapped == 0 {
		t.Fatal("no page was read into a huge-page buffer")
	}
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, out := c.runs.huge.Stats(); out != 0 {
		t.Fatalf("%d huge-page buffers still out after the file closed", out)
	}

	cfg := DefaultConfig()
	cfg.Manager = cl.ManagerAddr()
	cfg.LocalReads = false
	cfg.Log = testlog.New(t).WithField("component", "tcp-client")
	tcp, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	if tcp.local != nil {
		t.Fatal("LocalReads off, but the client has a short-circuit reader")
	}
	if got := readAll(t, tcp, ino, 128<<10); !bytes.Equal(got, data) {
		t.Fatal("read over TCP: bytes differ")
	}
}

// replicaFile writes data as a replica file (data, then the CRC32C of
// each 64 KiB block) and opens it as the chunkserver would hand it over.
func replicaFile(t *testing.T, data []byte) *localread.Replica {
	t.Helper()
	b := append([]byte(nil), data...)
	for i := 0; i < len(data); i += blockSize {
		b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(data[i:min(i+blockSize, len(data))], castagnoli))
	}
	path := filepath.Join(t.TempDir(), "replica")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &localread.Replica{File: f, Length: int64(len(data)), TableOffset: int64(len(data)), BlockSize: blockSize}
}

// A read from a replica file checks every block it touches: a flipped
// byte fails the reads that touch its block, with ErrChecksum, and no
// other; every other range reads back exactly, whether it is read in
// place, through a pooled buffer, or through one of its own.
func TestLocalReadChecksBlocks(t *testing.T) {
	data := randBytes(42, 5*blockSize+1000)
	r := replicaFile(t, data)
	l := newLocalReads(testlog.New(t), 0, new(runBufs))
	ranges := [][2]int64{
		{0, int64(len(data))},              // whole, in place
		{blockSize, 2 * blockSize},         // whole blocks
		{100, 4096},                        // inside block 0
		{blockSize - 10, 20},               // across blocks 0 and 1
		{5 * blockSize, 1000},              // the short last block
		{5*blockSize + 999, 1},             // its last byte
		{3*blockSize + 5, 2*blockSize - 5}, // to the end, from inside a block
	}
	for _, rg := range ranges {
		for _, dst := range [][]byte{nil, make([]byte, rg[1])} {
			got, err := l.readReplica(r, rg[0], rg[1], dst)
			if err != nil || !bytes.Equal(got, data[rg[0]:rg[0]+rg[1]]) {
				t.Fatalf("read [%d, +%d) (dst %v): err %v, bytes equal %v", rg[0], rg[1], dst != nil, err, bytes.Equal(got, data[rg[0]:rg[0]+rg[1]]))
			}
		}
	}
	if _, err := l.readReplica(r, int64(len(data))-10, 11, nil); !errors.Is(err, errShortReplica) {
		t.Fatalf("read past the end: %v, want errShortReplica", err)
	}

	// Flip a byte of block 3.
	bad := 3*blockSize + 123
	r2 := replicaFile(t, data)
	if _, err := writeAtPath(r2.File.Name(), []byte{data[bad] ^ 0x40}, int64(bad)); err != nil {
		t.Fatal(err)
	}
	for _, rg := range ranges {
		_, err := l.readReplica(r2, rg[0], rg[1], nil)
		touches := rg[0]/blockSize <= 3 && (rg[0]+rg[1]-1)/blockSize >= 3
		if touches != errors.Is(err, ErrChecksum) || (!touches && err != nil) {
			t.Fatalf("read [%d, +%d) of a replica damaged in block 3: %v", rg[0], rg[1], err)
		}
	}
}

// writeAtPath writes p at off of the file at path.
func writeAtPath(path string, p []byte, off int64) (int, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.WriteAt(p, off)
}
