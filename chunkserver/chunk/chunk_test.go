package chunk

import (
	"encoding/binary"
	"testing"
)

func TestSummary(t *testing.T) {
	if Summary(nil) != 0 {
		t.Fatal("summary of no blocks is not 0")
	}
	crcs := []uint32{Checksum([]byte("a")), Checksum([]byte("b")), 0xdeadbeef}
	var table []byte
	for _, c := range crcs {
		table = binary.LittleEndian.AppendUint32(table, c)
	}
	if got, want := Summary(crcs), Checksum(table); got != want {
		t.Fatalf("Summary %08x, want CRC32C of the little-endian table %08x", got, want)
	}
	if Summary(crcs[:2]) == Summary(crcs) {
		t.Fatal("summary ignores a block")
	}
	// Known CRC32C value (RFC 3720 test vector: 32 zero bytes).
	if got := Checksum(make([]byte, 32)); got != 0x8a9136aa {
		t.Fatalf("CRC32C of 32 zeros = %08x, want 8a9136aa", got)
	}
	if UpdateChecksum(Checksum([]byte("ab")), []byte("cd")) != Checksum([]byte("abcd")) {
		t.Fatal("UpdateChecksum does not continue a checksum")
	}
}

func TestBlocks(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want int
	}{{0, 0}, {1, 1}, {BlockSize, 1}, {BlockSize + 1, 2}, {MaxSize, MaxSize / BlockSize}} {
		if got := Blocks(c.n); got != c.want {
			t.Errorf("Blocks(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}
