// Package rawread is shoal's bulk read protocol: chunk reads over plain
// TCP, served on the chunkserver's gRPC port.
//
// A read through gRPC costs each end two copies of the data beyond the
// socket's (HTTP/2 frames of 16 KiB into gRPC's buffers, then into one
// message) plus a stream's setup, headers and trailers; on loopback that
// is most of a read's CPU. Here a reader receives a block's bytes
// straight from the socket into the buffer it returns to its caller, and
// a chunkserver sends them from the buffer it read them into. HDFS reads
// blocks the same way, with its own transfer protocol rather than its
// RPC layer.
//
// A connection starts with the client's Magic; the server answers with
// the same 8 bytes, so a client talking to a server that does not know
// the protocol (a plain gRPC server) finds out at once and uses gRPC.
// Then requests and their answers alternate, one read at a time: the
// client writes a 40-byte request, and the server answers with frames,
// each a 48-byte header, the stored CRC32C of each block the frame
// touches, and the data; the last frame has FlagLast. A frame is what a
// ReadChunk message is (see ReadChunkRequest in proto/shoal.proto for
// exact reads and their head and tail CRCs). A failed read is answered
// with an error frame, which is last and carries a gRPC status code, an
// ErrorDetail reason and a message; the connection stays usable. A
// malformed request closes the connection. All integers are little
// endian.
package rawread

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	shoalpb "github.com/shoalfs/shoal/proto"
)

// Magic opens a connection, from each side. An HTTP/2 connection opens
// with "PRI * HTTP/2.0", which differs in its first byte.
const Magic = "SHOALRD1"

const (
	// RequestSize is the length of an encoded request.
	RequestSize = 40
	// HeaderSize is the length of a frame header.
	HeaderSize = 48
	// MaxFrameData bounds a frame's data: one ReadChunk message's worth.
	MaxFrameData = 1 << 20
	// maxCRCs bounds a frame's checksums: the 64 KiB blocks that
	// MaxFrameData bytes can touch, starting and ending inside a block.
	maxCRCs = MaxFrameData/(64<<10) + 2
	// maxMessage bounds an error frame's message.
	maxMessage = 64 << 10
)

// Flags of a frame.
const (
	FlagLast = 1 << 0
)

// ErrUnsupported: the server did not answer the opening Magic with its
// own; it does not speak this protocol.
var ErrUnsupported = errors.New("rawread: server does not speak the protocol")

// ErrMalformed marks a request or frame that breaks the protocol.
var ErrMalformed = errors.New("rawread: malformed")

// Request asks for bytes [Offset, Offset+Length) of replica (ChunkID,
// Version), as a ReadChunkRequest does.
type Request struct {
	ChunkID, Version, Offset, Length uint64
	Exact                            bool
}

// Proto returns r as the ReadChunkRequest it stands for.
func (r Request) Proto() *shoalpb.ReadChunkRequest {
	return &shoalpb.ReadChunkRequest{ChunkId: r.ChunkID, Version: r.Version, Offset: r.Offset, Length: r.Length, Exact: r.Exact}
}

// AppendRequest appends the encoding of r to b.
func AppendRequest(b []byte, r Request) []byte {
	var flags uint64
	if r.Exact {
		flags = 1
	}
	b = binary.LittleEndian.AppendUint64(b, r.ChunkID)
	b = binary.LittleEndian.AppendUint64(b, r.Version)
	b = binary.LittleEndian.AppendUint64(b, r.Offset)
	b = binary.LittleEndian.AppendUint64(b, r.Length)
	return binary.LittleEndian.AppendUint64(b, flags)
}

// ParseRequest decodes a request of RequestSize bytes.
func ParseRequest(b []byte) (Request, error) {
	if len(b) != RequestSize {
		return Request{}, fmt.Errorf("%w: request of %d bytes", ErrMalformed, len(b))
	}
	le := binary.LittleEndian
	flags := le.Uint64(b[32:])
	if flags&^1 != 0 {
		return Request{}, fmt.Errorf("%w: request flags %#x", ErrMalformed, flags)
	}
	return Request{ChunkID: le.Uint64(b), Version: le.Uint64(b[8:]), Offset: le.Uint64(b[16:]),
		Length: le.Uint64(b[24:]), Exact: flags == 1}, nil
}

// Header is a frame's header and checksums. A frame with a Code other
// than OK is an error frame: it has no data, and Message follows it.
type Header struct {
	Code    codes.Code
	Flags   uint32
	Offset  uint64 // in the chunk, of the first data byte
	DataLen int
	// The fields of a ReadChunkResponse: see proto/shoal.proto.
	CRCs       []uint32
	HeadCRC    uint32
	TailCRC    uint32
	TailLength uint32
	// Of an error frame.
	Reason     shoalpb.ErrorDetail_Reason
	messageLen int
}

// Last reports whether this is the answer's last frame.
func (h *Header) Last() bool { return h.Flags&FlagLast != 0 }

// AppendFrame appends the header and checksums of a data frame holding
// m's data (which the caller sends after them) to b.
func AppendFrame(b []byte, m *shoalpb.ReadChunkResponse, last bool) []byte {
	var flags uint32
	if last {
		flags = FlagLast
	}
	b = appendHeader(b, codes.OK, flags, m.GetOffset(), uint32(len(m.GetData())), uint32(len(m.GetCrcs())),
		m.GetHeadCrc(), m.GetTailCrc(), m.GetTailLength(), 0, 0)
	for _, c := range m.GetCrcs() {
		b = binary.LittleEndian.AppendUint32(b, c)
	}
	return b
}

// AppendError appends an error frame for err, a gRPC status error (any
// other error is sent as Unknown), to b.
func AppendError(b []byte, err error) []byte {
	st := status.Convert(err)
	code := st.Code()
	if code == codes.OK {
		code = codes.Unknown // an error frame must say it is one
	}
	var reason shoalpb.ErrorDetail_Reason
	for _, d := range st.Details() {
		if e, ok := d.(*shoalpb.ErrorDetail); ok {
			reason = e.GetReason()
		}
	}
	msg := st.Message()
	if len(msg) > maxMessage {
		msg = msg[:maxMessage]
	}
	b = appendHeader(b, code, FlagLast, 0, 0, 0, 0, 0, 0, uint32(reason), uint32(len(msg)))
	return append(b, msg...)
}

func appendHeader(b []byte, code codes.Code, flags uint32, off uint64, dataLen, nCRC, head, tail, tailLen, reason, msgLen uint32) []byte {
	le := binary.LittleEndian
	b = le.AppendUint32(b, uint32(code))
	b = le.AppendUint32(b, flags)
	b = le.AppendUint64(b, off)
	for _, v := range [...]uint32{dataLen, nCRC, head, tail, tailLen, reason, msgLen, 0} {
		b = le.AppendUint32(b, v)
	}
	return b
}

// ReadHeader reads a frame's header and checksums from r. crcs is reused
// for the checksums if it has room.
func ReadHeader(r io.Reader, crcs []uint32) (Header, error) {
	var b [HeaderSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return Header{}, err
	}
	le := binary.LittleEndian
	h := Header{Code: codes.Code(le.Uint32(b[0:])), Flags: le.Uint32(b[4:]), Offset: le.Uint64(b[8:]),
		DataLen: int(le.Uint32(b[16:])), HeadCRC: le.Uint32(b[24:]), TailCRC: le.Uint32(b[28:]),
		TailLength: le.Uint32(b[32:]), Reason: shoalpb.ErrorDetail_Reason(le.Uint32(b[36:])), messageLen: int(le.Uint32(b[40:]))}
	nCRC := int(le.Uint32(b[20:]))
	switch {
	case h.Flags&^FlagLast != 0:
		return Header{}, fmt.Errorf("%w: frame flags %#x", ErrMalformed, h.Flags)
	case h.Code != codes.OK && (h.DataLen != 0 || nCRC != 0 || !h.Last() || h.messageLen > maxMessage):
		return Header{}, fmt.Errorf("%w: error frame (code %v) with %d bytes of data, %d checksums, a message of %d",
			ErrMalformed, h.Code, h.DataLen, nCRC, h.messageLen)
	case h.Code == codes.OK && (h.DataLen > MaxFrameData || nCRC > maxCRCs || h.messageLen != 0):
		return Header{}, fmt.Errorf("%w: frame of %d bytes with %d checksums", ErrMalformed, h.DataLen, nCRC)
	case h.Offset > math.MaxInt64:
		return Header{}, fmt.Errorf("%w: frame at offset %d", ErrMalformed, h.Offset)
	}
	if nCRC > 0 {
		cb := make([]byte, 4*nCRC)
		if _, err := io.ReadFull(r, cb); err != nil {
			return Header{}, noEOF(err)
		}
		h.CRCs = crcs[:0]
		for i := range nCRC {
			h.CRCs = append(h.CRCs, le.Uint32(cb[4*i:]))
		}
	}
	return h, nil
}

// ReadError reads the message that follows error frame h and returns
// the error it stands for: a gRPC status error with h's code, and its
// reason as an ErrorDetail.
func ReadError(r io.Reader, h Header) error {
	msg := make([]byte, h.messageLen)
	if _, err := io.ReadFull(r, msg); err != nil {
		return noEOF(err)
	}
	st := status.New(h.Code, string(msg))
	if h.Reason != shoalpb.ErrorDetail_UNSPECIFIED {
		if d, err := st.WithDetails(&shoalpb.ErrorDetail{Reason: h.Reason}); err == nil {
			st = d
		}
	}
	return st.Err()
}

// noEOF turns an EOF inside a frame into ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Open sends the opening Magic on a new client connection and checks
// the server's answer, read through br; ErrUnsupported if the server
// answered something else (a gRPC server sends its HTTP/2 settings
// first). A connection closed before any answer is an error, not
// ErrUnsupported: a server that is stopping closes the connections it
// has just accepted.
func Open(conn net.Conn, br *bufio.Reader) error {
	if _, err := io.WriteString(conn, Magic); err != nil {
		return err
	}
	var got [len(Magic)]byte
	if n, err := io.ReadFull(br, got[:]); err != nil {
		if n > 0 && errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: it answered %q and closed the connection", ErrUnsupported, got[:n])
		}
		return fmt.Errorf("rawread: no answer to the opening: %w", noEOF(err))
	}
	if !bytes.Equal(got[:], []byte(Magic)) {
		return fmt.Errorf("%w: it answered %q", ErrUnsupported, got[:])
	}
	return nil
}
