package metadata

import (
	"bytes"
	"sort"
	"testing"
)

func FuzzKeyRoundTrip(f *testing.F) {
	f.Add(byte('i'), uint64(1), uint64(0), "", []byte("i|\x00\x00\x00\x00\x00\x00\x00\x01"))
	f.Add(byte('d'), uint64(1), uint64(0), "hello.txt", []byte("d|\x00\x00\x00\x00\x00\x00\x00\x01a"))
	f.Add(byte('l'), uint64(42), uint64(7), "", []byte("l|"))
	f.Add(byte('c'), uint64(1<<63), uint64(0), "", []byte("c|\xff\xff\xff\xff\xff\xff\xff\xff"))
	f.Add(byte('n'), uint64(0), uint64(0), "cs-0123456789abcdef", []byte("n|cs-1"))
	f.Add(byte('o'), uint64(9), uint64(0), "", []byte("o|short"))
	f.Add(byte('m'), uint64(9), uint64(0), "", []byte{})
	f.Add(byte('x'), uint64(0), uint64(0), "seq/ino", []byte("x|schema"))
	f.Add(byte('z'), uint64(0), uint64(0), "", []byte("z|"))
	f.Fuzz(func(t *testing.T, kind byte, a, b uint64, s string, raw []byte) {
		// Fields -> key -> fields.
		k := key{Kind: kind}
		switch kind {
		case prefixInode, prefixOrphan, prefixDirTime:
			k.Ino = Ino(a)
		case prefixDirent:
			k.Ino, k.Name = Ino(a), s
		case prefixLayout:
			k.Ino, k.Index = Ino(a), b
		case prefixChunk:
			k.Chunk = ChunkID(a)
		case prefixNode, prefixMeta:
			k.Name = s
		}
		if enc := k.encode(); enc != nil {
			got, err := decodeKey(enc)
			if err != nil {
				t.Fatalf("decodeKey(encode(%+v)) = %v", k, err)
			}
			if got != k {
				t.Fatalf("round trip %+v -> %q -> %+v", k, enc, got)
			}
		}
		// Bytes -> key -> bytes: whatever decodes must re-encode exactly.
		if got, err := decodeKey(raw); err == nil {
			if enc := got.encode(); !bytes.Equal(enc, raw) {
				t.Fatalf("decodeKey(%q) = %+v, which encodes to %q", raw, got, enc)
			}
		}
	})
}

// TestKeyOrder checks that scans see numeric order: big-endian integers.
func TestKeyOrder(t *testing.T) {
	inos := []Ino{1, 2, 255, 256, 65535, 65536, 1 << 40, 1<<64 - 1}
	var keys [][]byte
	for i := len(inos) - 1; i >= 0; i-- {
		keys = append(keys, layoutKey(inos[i], 3), layoutKey(inos[i], 1000))
	}
	sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i], keys[j]) < 0 })
	for i := 1; i < len(keys); i++ {
		a, ai, _ := decodeLayoutKey(keys[i-1])
		b, bi, _ := decodeLayoutKey(keys[i])
		if a > b || (a == b && ai >= bi) {
			t.Fatalf("key order: (%d,%d) sorts before (%d,%d)", a, ai, b, bi)
		}
	}
	// A dirent prefix scan must not reach into another directory.
	if !bytes.HasPrefix(direntKey(5, "x"), direntPrefix(5)) || bytes.HasPrefix(direntKey(6, ""), direntPrefix(5)) {
		t.Fatal("dirent prefixes overlap")
	}
}

func TestDecodeKeyRejects(t *testing.T) {
	for _, raw := range []string{"", "i", "i-12345678", "i|1234567", "i|123456789", "l|12345678", "c|", "q|x", "d|1234567"} {
		if k, err := decodeKey([]byte(raw)); err == nil {
			t.Errorf("decodeKey(%q) = %+v, want an error", raw, k)
		}
	}
}
