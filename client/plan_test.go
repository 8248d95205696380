package client

import (
	"errors"
	"hash/crc32"
	"testing"
)

func TestPlanRead(t *testing.T) {
	const cs = 100
	layout := map[uint64]*chunkLoc{
		0: {index: 0, chunkID: 10, length: 100},
		1: {index: 1, chunkID: 11, length: 40}, // short chunk: [140, 200) reads zeros
		// 2 is a hole
		3: {index: 3, chunkID: 13, length: 100},
	}
	type want struct {
		bufOff, n int64
		index     uint64
		chunkOff  int64
		hole      bool
		dataN     int64
	}
	tests := []struct {
		name   string
		off, n int64
		want   []want
	}{
		{"inside one chunk", 10, 20, []want{{0, 20, 0, 10, false, 20}}},
		{"across a boundary", 90, 20, []want{{0, 10, 0, 90, false, 10}, {10, 10, 1, 0, false, 10}}},
		{"past a short chunk's length", 130, 20, []want{{0, 20, 1, 30, false, 10}}},
		{"entirely past the length", 150, 10, []want{{0, 10, 1, 50, false, 0}}},
		{"hole", 210, 30, []want{{0, 30, 2, 10, true, 0}}},
		{"through a hole", 190, 120, []want{{0, 10, 1, 90, false, 0}, {10, 100, 2, 0, true, 0}, {110, 10, 3, 0, false, 10}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := planRead(tc.off, tc.n, cs, layout)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d pieces %+v, want %d", len(got), got, len(tc.want))
			}
			var total int64
			for i, w := range tc.want {
				g := got[i]
				total += g.n
				if g.bufOff != w.bufOff || g.n != w.n || g.index != w.index || g.chunkOff != w.chunkOff ||
					(g.loc == nil) != w.hole || g.dataN != w.dataN {
					t.Errorf("piece %d = %+v, want %+v", i, g, w)
				}
			}
			if total != tc.n {
				t.Errorf("pieces cover %d bytes, want %d", total, tc.n)
			}
		})
	}
}

func TestVerifyBlocks(t *testing.T) {
	data := make([]byte, 2*blockSize+100)
	for i := range data {
		data[i] = byte(i * 7)
	}
	crcs := []uint32{
		crc32.Checksum(data[:blockSize], castagnoli),
		crc32.Checksum(data[blockSize:2*blockSize], castagnoli),
		crc32.Checksum(data[2*blockSize:], castagnoli),
	}
	if err := verifyBlocks(data, crcs); err != nil {
		t.Fatalf("good data: %v", err)
	}
	if err := verifyBlocks(data, crcs[:2]); !errors.Is(err, ErrChecksum) {
		t.Errorf("missing crc: err = %v, want ErrChecksum", err)
	}
	bad := append([]byte(nil), data...)
	bad[blockSize+5] ^= 1
	if err := verifyBlocks(bad, crcs); !errors.Is(err, ErrChecksum) {
		t.Errorf("flipped bit: err = %v, want ErrChecksum", err)
	}
	// IEEE is not Castagnoli.
	ieee := []uint32{crc32.ChecksumIEEE(data[:blockSize]), crcs[1], crcs[2]}
	if err := verifyBlocks(data, ieee); !errors.Is(err, ErrChecksum) {
		t.Errorf("IEEE crc accepted")
	}
	if err := verifyBlocks(nil, nil); err != nil {
		t.Errorf("empty: %v", err)
	}
}
