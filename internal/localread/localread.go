// Package localread is shoal's short-circuit read protocol: a client on
// the same host as a chunkserver asks it, over a Unix socket, for open
// descriptors of a replica's file, and then reads the replica itself,
// with no copy through a TCP socket and no work on the chunkserver. HDFS
// reads co-located blocks the same way (short-circuit local reads, with
// descriptors passed over a Unix domain socket).
//
// A chunkserver listens on the abstract Unix socket SocketName(addr),
// addr being the address it advertises. Abstract sockets live in the
// network namespace, so a client reaches the socket exactly when it
// shares the chunkserver's host and namespace, and no file on disk has
// to be cleaned up after a crash. A client that cannot connect reads
// over TCP.
//
// The socket is SOCK_SEQPACKET: each request and each reply is one
// packet. A request is 16 bytes, the chunk id and version. A reply is a
// 40-byte header; a successful one carries, as SCM_RIGHTS, a read-only
// descriptor of the replica file and, if FlagDirect, a second one opened
// with O_DIRECT. The header says where the data and the checksum table
// are in the file, so that the client need not know the store's format:
// the CRC32C of each BlockSize block of data, little-endian, from
// TableOffset. A failed open is a reply with a gRPC code other than OK
// and the message after the header. All integers are little endian.
//
// A replica version never changes once written, so the descriptors stay
// good to read as long as the client holds them, even after the
// chunkserver deletes the file or dies; the client checks every block it
// reads against its checksum, as it does over TCP.
package localread

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"google.golang.org/grpc/codes"
)

// SocketName is the abstract socket (Go's "@" prefix) that the
// chunkserver advertising addr listens on.
func SocketName(addr string) string { return "@shoal-chunkserver/" + addr }

const (
	// RequestSize is the length of a request.
	RequestSize = 16
	// HeaderSize is the length of a reply's header.
	HeaderSize = 40
	// maxMessage bounds an error reply's message.
	maxMessage = 4 << 10
)

// FlagDirect: the reply carries a second, O_DIRECT descriptor.
const FlagDirect = 1 << 0

// ErrMalformed marks a request or reply that breaks the protocol.
var ErrMalformed = errors.New("localread: malformed")

// Replica is an open replica: its file, and where its data and checksums
// are in it. The caller closes File and Direct.
type Replica struct {
	File   *os.File
	Direct *os.File // nil if the chunkserver's filesystem has no O_DIRECT
	// Length is the replica's data length; its bytes are at
	// [DataOffset, DataOffset+Length) of the file.
	Length, DataOffset int64
	// TableOffset is where the CRC32C of each BlockSize block of the data
	// starts, four bytes each.
	TableOffset int64
	BlockSize   int64
}

// Close closes r's files.
func (r *Replica) Close() error {
	err := r.File.Close()
	if r.Direct != nil {
		err = errors.Join(err, r.Direct.Close())
	}
	return err
}

// Error is a failed open, as the chunkserver answered it.
type Error struct {
	Code    codes.Code
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("localread: chunkserver: %s: %s", e.Code, e.Message)
}

// Listen listens on the socket of the chunkserver advertising addr.
func Listen(addr string) (*net.UnixListener, error) {
	return net.ListenUnix("unixpacket", &net.UnixAddr{Name: SocketName(addr), Net: "unixpacket"})
}

// Dial connects to the socket of the chunkserver advertising addr.
func Dial(addr string) (*net.UnixConn, error) {
	return net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: SocketName(addr), Net: "unixpacket"})
}

// ReadRequest reads one request from conn: the replica's chunk id and
// version; io.EOF when the client has gone.
func ReadRequest(conn *net.UnixConn) (chunkID, version uint64, err error) {
	var b [RequestSize + 1]byte // one more, to see a longer packet
	n, err := conn.Read(b[:])
	if err != nil {
		return 0, 0, err
	}
	if n != RequestSize {
		return 0, 0, fmt.Errorf("%w: request of %d bytes", ErrMalformed, n)
	}
	return binary.LittleEndian.Uint64(b[:]), binary.LittleEndian.Uint64(b[8:]), nil
}

// WriteReply sends r's descriptors and layout on conn.
func WriteReply(conn *net.UnixConn, r *Replica) error {
	fds := []int{int(r.File.Fd())}
	var flags uint32
	if r.Direct != nil {
		fds = append(fds, int(r.Direct.Fd()))
		flags |= FlagDirect
	}
	h := appendHeader(nil, codes.OK, flags, r.Length, r.DataOffset, r.TableOffset, r.BlockSize, 0)
	_, _, err := conn.WriteMsgUnix(h, syscall.UnixRights(fds...), nil)
	return err
}

// WriteError answers a request with a failure.
func WriteError(conn *net.UnixConn, code codes.Code, msg string) error {
	if code == codes.OK {
		code = codes.Unknown
	}
	if len(msg) > maxMessage {
		msg = msg[:maxMessage]
	}
	b := appendHeader(nil, code, 0, 0, 0, 0, 0, uint32(len(msg)))
	_, err := conn.Write(append(b, msg...))
	return err
}

func appendHeader(b []byte, code codes.Code, flags uint32, length, dataOff, tableOff, blockSize int64, msgLen uint32) []byte {
	le := binary.LittleEndian
	b = le.AppendUint32(b, uint32(code))
	b = le.AppendUint32(b, flags)
	for _, v := range [...]int64{length, dataOff, tableOff} {
		b = le.AppendUint64(b, uint64(v))
	}
	b = le.AppendUint32(b, uint32(blockSize))
	return le.AppendUint32(b, msgLen)
}

// Open asks the chunkserver on conn for replica (chunkID, version). A
// failed open the chunkserver answered is an *Error; any other error
// leaves conn unusable.
func Open(conn *net.UnixConn, chunkID, version uint64) (*Replica, error) {
	var req [RequestSize]byte
	binary.LittleEndian.PutUint64(req[:], chunkID)
	binary.LittleEndian.PutUint64(req[8:], version)
	if _, err := conn.Write(req[:]); err != nil {
		return nil, err
	}
	b := make([]byte, HeaderSize+maxMessage)
	oob := make([]byte, syscall.CmsgSpace(2*4))
	n, oobn, msgFlags, _, err := conn.ReadMsgUnix(b, oob)
	if err != nil {
		return nil, err
	}
	files, ferr := receivedFiles(oob[:oobn])
	r, err := parseReply(b[:n], msgFlags, files)
	if err = errors.Join(err, ferr); err != nil {
		for _, f := range files {
			f.Close()
		}
		return nil, err
	}
	return r, nil
}

// receivedFiles turns the descriptors in a control message into files.
func receivedFiles(oob []byte) ([]*os.File, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("%w: control message: %v", ErrMalformed, err)
	}
	var files []*os.File
	for i := range msgs {
		fds, err := syscall.ParseUnixRights(&msgs[i])
		if err != nil {
			continue
		}
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), "replica"))
		}
	}
	return files, nil
}

// parseReply decodes a reply whose packet brought files.
func parseReply(b []byte, msgFlags int, files []*os.File) (*Replica, error) {
	if len(b) < HeaderSize || msgFlags&(syscall.MSG_TRUNC|syscall.MSG_CTRUNC) != 0 {
		return nil, fmt.Errorf("%w: reply of %d bytes, flags %#x", ErrMalformed, len(b), msgFlags)
	}
	le := binary.LittleEndian
	code, flags := codes.Code(le.Uint32(b)), le.Uint32(b[4:])
	if code != codes.OK {
		msgLen := int(le.Uint32(b[36:]))
		if msgLen != len(b)-HeaderSize || len(files) != 0 {
			return nil, fmt.Errorf("%w: error reply with a %d-byte message in %d bytes and %d files", ErrMalformed, msgLen, len(b), len(files))
		}
		return nil, &Error{Code: code, Message: string(b[HeaderSize:])}
	}
	r := &Replica{
		Length:      int64(le.Uint64(b[8:])),
		DataOffset:  int64(le.Uint64(b[16:])),
		TableOffset: int64(le.Uint64(b[24:])),
		BlockSize:   int64(le.Uint32(b[32:])),
	}
	want := 1
	if flags&FlagDirect != 0 {
		want = 2
	}
	if len(b) != HeaderSize || flags&^FlagDirect != 0 || len(files) != want ||
		r.Length < 0 || r.DataOffset < 0 || r.TableOffset < r.DataOffset+r.Length || r.BlockSize <= 0 {
		return nil, fmt.Errorf("%w: reply flags %#x with %d files, length %d, data at %d, table at %d, blocks of %d",
			ErrMalformed, flags, len(files), r.Length, r.DataOffset, r.TableOffset, r.BlockSize)
	}
	r.File = files[0]
	if want == 2 {
		r.Direct = files[1]
	}
	return r, nil
}
