package localread

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
)

// pair listens on a socket named for the test and returns both ends of
// one connection; both close when the test ends.
func pair(t *testing.T) (server, client *net.UnixConn) {
	t.Helper()
	addr := "test/" + t.Name()
	lis, err := Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	client, err = Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	server, err = lis.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

func tempFile(t *testing.T, data []byte) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// An open hands the client descriptors of the server's files, which read
// the files' bytes after the server has closed its own, and the layout
// the server sent; a failed open is an *Error with the server's code and
// message, and the connection goes on.
func TestOpenPassesDescriptors(t *testing.T) {
	server, client := pair(t)
	data := []byte("replica bytes, then a table")
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			id, version, err := ReadRequest(server)
			if err != nil {
				return err
			}
			if id != 7 || version != 3 {
				return errors.New("wrong request")
			}
			f, g := tempFile(t, data), tempFile(t, data)
			r := &Replica{File: f, Direct: g, Length: 13, DataOffset: 0, TableOffset: 14, BlockSize: 65536}
			err = WriteReply(server, r)
			r.Close()
			if err != nil {
				return err
			}
			if _, _, err := ReadRequest(server); err != nil {
				return err
			}
			return WriteError(server, codes.NotFound, "no such replica")
		}()
	}()
	r, err := Open(client, 7, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Length != 13 || r.TableOffset != 14 || r.BlockSize != 65536 || r.Direct == nil {
		t.Fatalf("replica %+v", r)
	}
	for _, f := range []*os.File{r.File, r.Direct} {
		got := make([]byte, len(data))
		if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read through a passed descriptor: %q, %v", got, err)
		}
	}
	_, err = Open(client, 8, 1)
	var lerr *Error
	if !errors.As(err, &lerr) || lerr.Code != codes.NotFound || lerr.Message != "no such replica" {
		t.Fatalf("failed open: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("server: %v", err)
	}
}

// A request of the wrong size is malformed; a closed client is io.EOF.
func TestReadRequestMalformed(t *testing.T) {
	server, client := pair(t)
	if _, err := client.Write([]byte("short")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadRequest(server); !errors.Is(err, ErrMalformed) {
		t.Fatalf("5-byte request: %v, want ErrMalformed", err)
	}
	client.Close()
	if _, _, err := ReadRequest(server); !errors.Is(err, io.EOF) {
		t.Fatalf("after the client closed: %v, want io.EOF", err)
	}
}

// A reply without the descriptors it announces is malformed, and its
// stray descriptors are closed.
func TestReplyWithoutDescriptors(t *testing.T) {
	server, client := pair(t)
	go func() {
		ReadRequest(server)
		server.Write(appendHeader(nil, codes.OK, FlagDirect, 10, 0, 10, 65536, 0))
	}()
	if _, err := Open(client, 1, 1); !errors.Is(err, ErrMalformed) {
		t.Fatalf("reply with no descriptors: %v, want ErrMalformed", err)
	}
}
