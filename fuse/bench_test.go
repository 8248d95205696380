package fuse_test

import (
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/shoalfs/shoal/fuse"
	"github.com/shoalfs/shoal/fuse/fusetest"
	"github.com/shoalfs/shoal/internal/cluster/clustertest"
)

const benchFileSize = 64 << 20

func benchMount(b *testing.B) string {
	b.Helper()
	fusetest.Require(b)
	c := clustertest.New(b, clustertest.Options{ChunkSize: 64 << 20})
	return fusetest.Mount(b, c.ManagerAddr(), fuse.DefaultOptions())
}

func writeBenchFile(b *testing.B, p string, buf []byte) {
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	for off := 0; off < benchFileSize; off += len(buf) {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSequentialWrite writes 64 MiB files through the mount in
// 1 MiB writes; each file is closed (so committed) within the timing.
func BenchmarkSequentialWrite(b *testing.B) {
	mnt := benchMount(b)
	buf := make([]byte, 1<<20)
	b.SetBytes(benchFileSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		writeBenchFile(b, join(mnt, fmt.Sprintf("w%d", i)), buf)
	}
}

// BenchmarkSequentialRead reads a 64 MiB file through the mount in
// 1 MiB reads; every open drops the kernel's cached pages.
func BenchmarkSequentialRead(b *testing.B) {
	mnt := benchMount(b)
	buf := make([]byte, 1<<20)
	p := join(mnt, "r")
	writeBenchFile(b, p, buf)
	b.SetBytes(benchFileSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for err == nil {
			var m int
			m, err = f.Read(buf)
			n += m
		}
		f.Close()
		if err != io.EOF || n != benchFileSize {
			b.Fatalf("read %d bytes, %v", n, err)
		}
	}
}
