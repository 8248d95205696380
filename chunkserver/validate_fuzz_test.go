package chunkserver

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/shoalfs/shoal/internal/transport"
	shoalpb "github.com/shoalfs/shoal/proto"
)

// FuzzValidateWrite decodes arbitrary bytes as a WriteChunk message and
// checks that whatever the validators accept is safe to act on: a real
// version above its base, lengths and ranges inside a chunk, a bounded
// chain of non-empty addresses.
func FuzzValidateWrite(f *testing.F) {
	for _, m := range []*shoalpb.WriteChunkRequest{
		{Header: &shoalpb.WriteChunkHeader{ChunkId: 1, Version: 1, Chain: []string{"127.0.0.1:1"}}},
		{Header: &shoalpb.WriteChunkHeader{ChunkId: 1, Version: 2, BaseVersion: 1, BaseLength: 4096}},
		{Offset: MaxChunkSize - 1, Data: []byte("xy")},
		{Offset: 1<<64 - 1, Data: []byte("x")},
		{Header: &shoalpb.WriteChunkHeader{Version: 1, Chain: []string{""}}},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m shoalpb.WriteChunkRequest
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		if h := m.Header; h != nil && validateHeader(h) == nil {
			if h.Version == 0 || h.BaseVersion >= h.Version || h.BaseLength > MaxChunkSize || len(h.Chain) > maxChain {
				t.Fatalf("accepted header %v", h)
			}
			for _, a := range h.Chain {
				if a == "" {
					t.Fatalf("accepted an empty chain address: %v", h)
				}
			}
		}
		if validateData(&m) == nil {
			n := uint64(len(m.Data))
			if n > transport.MaxDataMessage || m.Offset > MaxChunkSize || m.Offset+n > MaxChunkSize {
				t.Fatalf("accepted data [%d, +%d)", m.Offset, n)
			}
		}
	})
}
