package metadata

import (
	"reflect"
	"testing"
)

func TestValueRoundTrip(t *testing.T) {
	attrs := []Attr{
		{Ino: 1, Mode: ModeDir | 0o755, Nlink: 2, Parent: 1},
		{Ino: 99, Mode: ModeRegular | 0o644, Nlink: 3, UID: 1000, GID: 1000, Size: 1<<60 - 1,
			Atime: -5, Mtime: 1 << 62, Ctime: 1_700_000_000_000_000_000, ChunkSize: 64 << 20},
		{Ino: 7, Mode: ModeSymlink | 0o777, Nlink: 1, Target: "../some/where/é"},
		{Ino: 8, Mode: modeChar | 0o600, Nlink: 1, Rdev: 0x0501},
	}
	for _, a := range attrs {
		got, err := decodeInode(a.Ino, encodeInode(a))
		if err != nil || got != a {
			t.Errorf("inode round trip %+v -> %+v, %v", a, got, err)
		}
	}
	for _, l := range []layoutEntry{{}, {Chunk: 1 << 63, Version: 9, Length: 64 << 20, Summary: 0xffffffff}} {
		if got, err := decodeLayout(encodeLayout(l)); err != nil || got != l {
			t.Errorf("layout round trip %+v -> %+v, %v", l, got, err)
		}
	}
	for _, c := range []chunkRecord{{}, {Version: 3, Wanted: 3, Length: 10, Summary: 1, Ino: 5, Index: 1 << 40}} {
		if got, err := decodeChunk(encodeChunk(c)); err != nil || got != c {
			t.Errorf("chunk round trip %+v -> %+v, %v", c, got, err)
		}
	}
	for _, n := range []nodeRecord{{}, {Addr: "127.0.0.1:9500", Rack: "r1", Capacity: 1 << 40, Draining: true}} {
		if got, err := decodeNode(encodeNode(n)); err != nil || got != n {
			t.Errorf("node round trip %+v -> %+v, %v", n, got, err)
		}
	}
	for _, e := range []dirent{{Ino: 1, Mode: ModeDir}, {Ino: 1 << 50, Mode: ModeRegular}} {
		if got, err := decodeDirent(encodeDirent(e)); err != nil || got != e {
			t.Errorf("dirent round trip %+v -> %+v, %v", e, got, err)
		}
	}
	for _, s := range []dirStamp{{}, {Mtime: -1, Ctime: 1 << 62}} {
		if got, err := decodeStamp(encodeStamp(s)); err != nil || got != s {
			t.Errorf("stamp round trip %+v -> %+v, %v", s, got, err)
		}
	}
}

func TestValueDecodeRejects(t *testing.T) {
	for _, b := range [][]byte{nil, {}, {2, 1}, {valueFormat, 0x80}, {valueFormat, 0, 0, 0, 0, 0, 0, 0, 0, 10, 'a'}} {
		if a, err := decodeInode(1, b); err == nil {
			t.Errorf("decodeInode(%x) = %+v, want an error", b, a)
		}
	}
	if _, err := decodeNode([]byte{valueFormat, 0, 0, 0, 2}); err == nil {
		t.Error("decodeNode accepted a bool of 2")
	}
	if _, err := decodeDirent([]byte{valueFormat, 1, 0x80, 0x80, 0x80, 0x80, 0x20}); err == nil {
		t.Error("decodeDirent accepted a mode over 32 bits")
	}
}

// FuzzValueRoundTrip: decoding arbitrary bytes never panics, and whatever
// decodes re-encodes to a value that decodes the same.
func FuzzValueRoundTrip(f *testing.F) {
	f.Add([]byte{})
	f.Add(encodeInode(Attr{Mode: ModeRegular | 0o644, Nlink: 1, Size: 12345, ChunkSize: 1 << 20, Target: "x"}))
	f.Add(encodeLayout(layoutEntry{Chunk: 5, Version: 2, Length: 100, Summary: 9}))
	f.Add(encodeChunk(chunkRecord{Version: 2, Wanted: 3, Length: 100, Ino: 4, Index: 1}))
	f.Add(encodeNode(nodeRecord{Addr: "a:1", Rack: "r", Capacity: 10, Draining: true}))
	f.Add([]byte{valueFormat, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(name string, decode func([]byte) (any, error), encode func(any) []byte) {
			v, err := decode(b)
			if err != nil {
				return
			}
			again, err := decode(encode(v))
			if err != nil || !reflect.DeepEqual(again, v) {
				t.Fatalf("%s: %+v re-decodes to %+v, %v", name, v, again, err)
			}
		}
		check("inode", func(b []byte) (any, error) { return decodeInode(3, b) }, func(v any) []byte { return encodeInode(v.(Attr)) })
		check("layout", func(b []byte) (any, error) { return decodeLayout(b) }, func(v any) []byte { return encodeLayout(v.(layoutEntry)) })
		check("chunk", func(b []byte) (any, error) { return decodeChunk(b) }, func(v any) []byte { return encodeChunk(v.(chunkRecord)) })
		check("node", func(b []byte) (any, error) { return decodeNode(b) }, func(v any) []byte { return encodeNode(v.(nodeRecord)) })
		check("dirent", func(b []byte) (any, error) { return decodeDirent(b) }, func(v any) []byte { return encodeDirent(v.(dirent)) })
		check("stamp", func(b []byte) (any, error) { return decodeStamp(b) }, func(v any) []byte { return encodeStamp(v.(dirStamp)) })
	})
}
