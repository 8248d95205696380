package diskstore

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/shoalfs/shoal/chunkserver/chunk"
)

// encodeFile is a replica file for data, built from the format's parts
// independently of the writer.
func encodeFile(id chunk.ID, version uint64, data []byte) []byte {
	var crcs []uint32
	for off := 0; off < len(data); off += chunk.BlockSize {
		crcs = append(crcs, chunk.Checksum(data[off:min(off+chunk.BlockSize, len(data))]))
	}
	h := header{id: id, version: version, length: int64(len(data)), summary: chunk.Summary(crcs)}
	b := appendTable(bytes.Clone(data), crcs)
	return append(b, h.marshal()...)
}

func seedData(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>9)
	}
	return b
}

func TestWriterMatchesFormat(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, n := range []int{0, 1, chunk.BlockSize, chunk.BlockSize + 3, 3<<20 + 1} {
		data := seedData(n)
		w, err := s.Create(t.Context(), chunk.ID(i), 9, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.WriteAt(data, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Commit(t.Context()); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(ReplicaPath(s.Dir(), chunk.ID(i), 9))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, encodeFile(chunk.ID(i), 9, data)) {
			t.Fatalf("%d bytes: the writer's file differs from the format", n)
		}
	}
}

// FuzzParseChunkFile feeds arbitrary bytes to the parser: it must never
// panic, must mark every rejection ErrCorrupt, and must accept a file only
// if it is exactly what the format makes of its content.
func FuzzParseChunkFile(f *testing.F) {
	for _, n := range []int{0, 1, 100, chunk.BlockSize, chunk.BlockSize + 3} {
		good := encodeFile(42, 3, seedData(n))
		f.Add(good)
		f.Add(good[:len(good)-1])
		bad := bytes.Clone(good)
		bad[len(bad)-1] ^= 1
		f.Add(bad)
	}
	f.Add([]byte{})
	f.Add([]byte("SHCK"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		h, err := parseChunkFile(r, int64(len(b)))
		if err != nil {
			if !errors.Is(err, chunk.ErrCorrupt) {
				t.Fatalf("parse error not marked ErrCorrupt: %v", err)
			}
			return
		}
		crcs, err := readTable(r, h)
		if err == nil {
			err = verifyBlocks(h, b[:h.length], 0, crcs)
		}
		if err != nil {
			if !errors.Is(err, chunk.ErrCorrupt) {
				t.Fatalf("check error not marked ErrCorrupt: %v", err)
			}
			return
		}
		if want := encodeFile(h.id, h.version, b[:h.length]); !bytes.Equal(b, want) {
			t.Fatalf("accepted a file that is not the encoding of its content")
		}
	})
}
