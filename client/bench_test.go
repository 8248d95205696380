package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
)

// The benchmarks run against the in-memory fakes over loopback gRPC, so
// they measure the client's pipeline (streaming, chain forwarding,
// in-flight chunks, readahead, CRC checks), not disks.

const benchSize = 64 * mib

func BenchmarkWrite(b *testing.B) {
	for _, cs := range []uint64{8 * mib, 64 * mib} {
		b.Run(fmt.Sprintf("chunk=%dMiB", cs/mib), func(b *testing.B) {
			fc := newFakeCluster(b, fakeOptions{nodes: 3, replication: 2, minReplicas: 2, chunkSize: cs})
			c := fc.client(b, nil)
			ctx := context.Background()
			data := randBytes(1, benchSize)
			b.SetBytes(benchSize)
			b.ResetTimer()
			for i := range b.N {
				if _, err := c.Put(ctx, bytes.NewReader(data), benchSize, fmt.Sprintf("/f%d", i), nil); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				for _, n := range fc.nodes { // keep the fakes' memory flat
					n.mu.Lock()
					clear(n.chunks)
					n.writes = nil
					n.mu.Unlock()
				}
				b.StartTimer()
			}
		})
	}
}

func BenchmarkRead(b *testing.B) {
	for _, step := range []int{128 << 10, mib} {
		b.Run(fmt.Sprintf("read=%dKiB", step>>10), func(b *testing.B) {
			fc := newFakeCluster(b, fakeOptions{nodes: 3, replication: 2, minReplicas: 2, chunkSize: 8 * mib})
			c := fc.client(b, nil)
			ctx := context.Background()
			data := randBytes(2, benchSize)
			a, err := c.Put(ctx, bytes.NewReader(data), benchSize, "/f", nil)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, step)
			b.SetBytes(benchSize)
			b.ResetTimer()
			for range b.N {
				f, err := c.Open(ctx, a.Ino)
				if err != nil {
					b.Fatal(err)
				}
				for off := int64(0); ; {
					n, err := f.ReadAt(ctx, buf, off)
					off += int64(n)
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				f.Close(ctx)
			}
		})
	}
}
