package diskstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/shoalfs/shoal/chunkserver/chunk"
)

// A replica file is the data, the checksum table, and a trailer:
//
//	offset               size      field
//	0                    L         data
//	L                    4*N       CRC32C of each block, N = ceil(L / block size)
//	L+4N                 48        trailer:
//	  +0                 4         magic "SHCK"
//	  +4                 2         format version (2), little-endian like every field
//	  +6                 2         flags (0)
//	  +8                 4         block size (65536)
//	  +12                4         summary: chunk.Summary of the checksum table
//	  +16                8         chunk id
//	  +24                8         version
//	  +32                8         data length L
//	  +40                4         CRC32C of trailer bytes [0, 40)
//	  +44                4         reserved (0)
//
// The file is exactly L + 4N + 48 bytes, so a 4 KiB chunk is a 4148-byte
// file. Data starts at offset 0 so that whole, aligned buffers of it can
// be written with O_DIRECT (writer.go). The table and the trailer follow
// the data because the writer learns them only as the data streams in;
// the trailer is written last. The trailer checksum covers every trailer
// field (the summary included), and the summary covers the table, so
// every byte of the file is checked. (Format 1 put the header first and
// the data at offset 48; this build does not read it.)
const (
	// HeaderSize is the size of a replica file's trailer.
	HeaderSize = 48
	// DataOffset is where a replica file's data starts.
	DataOffset = 0

	magic         = "SHCK"
	formatVersion = 2
)

// header is a replica file's decoded header.
type header struct {
	id      chunk.ID
	version uint64
	length  int64
	summary uint32
}

// errMalformed marks a file that does not parse; it is always also marked
// chunk.ErrCorrupt.
var errMalformed = fmt.Errorf("malformed replica file: %w", chunk.ErrCorrupt)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

func (h header) marshal() []byte {
	b := make([]byte, HeaderSize)
	copy(b, magic)
	binary.LittleEndian.PutUint16(b[4:], formatVersion)
	binary.LittleEndian.PutUint32(b[8:], chunk.BlockSize)
	binary.LittleEndian.PutUint32(b[12:], h.summary)
	binary.LittleEndian.PutUint64(b[16:], uint64(h.id))
	binary.LittleEndian.PutUint64(b[24:], h.version)
	binary.LittleEndian.PutUint64(b[32:], uint64(h.length))
	binary.LittleEndian.PutUint32(b[40:], chunk.Checksum(b[:40]))
	return b
}

// parseHeader decodes and checks a header.
func parseHeader(b []byte) (header, error) {
	if len(b) < HeaderSize {
		return header{}, malformed("%d bytes, shorter than the %d-byte header", len(b), HeaderSize)
	}
	if string(b[:4]) != magic {
		return header{}, malformed("bad magic %q", b[:4])
	}
	if got, want := binary.LittleEndian.Uint32(b[40:]), chunk.Checksum(b[:40]); got != want {
		return header{}, malformed("header checksum %08x, computed %08x", got, want)
	}
	if v := binary.LittleEndian.Uint16(b[4:]); v != formatVersion {
		return header{}, malformed("unsupported format version %d", v)
	}
	if f := binary.LittleEndian.Uint16(b[6:]); f != 0 {
		return header{}, malformed("unknown flags %#x", f)
	}
	if bs := binary.LittleEndian.Uint32(b[8:]); bs != chunk.BlockSize {
		return header{}, malformed("block size %d, want %d", bs, chunk.BlockSize)
	}
	if r := binary.LittleEndian.Uint32(b[44:]); r != 0 {
		return header{}, malformed("reserved field %#x is not zero", r)
	}
	h := header{
		summary: binary.LittleEndian.Uint32(b[12:]),
		id:      chunk.ID(binary.LittleEndian.Uint64(b[16:])),
		version: binary.LittleEndian.Uint64(b[24:]),
	}
	length := binary.LittleEndian.Uint64(b[32:])
	if length > chunk.MaxSize {
		return header{}, malformed("length %d over the %d maximum", length, chunk.MaxSize)
	}
	h.length = int64(length)
	if h.version == 0 {
		return header{}, malformed("version 0")
	}
	return h, nil
}

// fileSize is the size of a replica file holding length data bytes.
func fileSize(length int64) int64 {
	return trailerOffset(length) + HeaderSize
}

// trailerOffset is where the trailer of a replica of length bytes is.
func trailerOffset(length int64) int64 { return length + 4*int64(chunk.Blocks(length)) }

// tableOffset is where the checksum of block b is stored.
func (h header) tableOffset(b int) int64 { return h.length + 4*int64(b) }

// parseChunkFile reads and checks the header of a replica file of the
// given size. Errors are marked chunk.ErrCorrupt, except I/O errors.
func parseChunkFile(r io.ReaderAt, size int64) (header, error) {
	if size < HeaderSize {
		return header{}, malformed("%d bytes, shorter than the %d-byte trailer", size, HeaderSize)
	}
	var b [HeaderSize]byte
	if n, err := r.ReadAt(b[:], size-HeaderSize); n < HeaderSize {
		if err == nil || errors.Is(err, io.EOF) {
			return header{}, malformed("%d bytes, shorter than the %d-byte trailer", size, HeaderSize)
		}
		return header{}, err
	}
	h, err := parseHeader(b[:])
	if err != nil {
		return header{}, err
	}
	if want := fileSize(h.length); size != want {
		return header{}, malformed("file is %d bytes, trailer says %d", size, want)
	}
	return h, nil
}

// readChecksums returns the stored checksums of blocks [first, first+count),
// which the caller has clipped to the replica.
func readChecksums(r io.ReaderAt, h header, first, count int) ([]uint32, error) {
	b := make([]byte, 4*count)
	if _, err := r.ReadAt(b, h.tableOffset(first)); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, malformed("checksum table truncated")
		}
		return nil, err
	}
	crcs := make([]uint32, count)
	for i := range crcs {
		crcs[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return crcs, nil
}

// readTable returns the whole checksum table, checked against the summary.
func readTable(r io.ReaderAt, h header) ([]uint32, error) {
	crcs, err := readChecksums(r, h, 0, chunk.Blocks(h.length))
	if err != nil {
		return nil, err
	}
	if got := chunk.Summary(crcs); got != h.summary {
		return nil, malformed("checksum table summary %08x, header says %08x", got, h.summary)
	}
	return crcs, nil
}

// verifyBlocks checks data, which starts at block first, block by block.
func verifyBlocks(h header, data []byte, first int, crcs []uint32) error {
	for i, c := range crcs {
		lo := i * chunk.BlockSize
		hi := min(lo+chunk.BlockSize, len(data))
		if got := chunk.Checksum(data[lo:hi]); got != c {
			return fmt.Errorf("chunk %d version %d block %d: checksum %08x, stored %08x: %w",
				h.id, h.version, first+i, got, c, chunk.ErrCorrupt)
		}
	}
	return nil
}

// appendTable encodes crcs as the checksum table.
func appendTable(b []byte, crcs []uint32) []byte {
	for _, c := range crcs {
		b = binary.LittleEndian.AppendUint32(b, c)
	}
	return b
}
