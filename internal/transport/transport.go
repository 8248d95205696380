// Package transport holds the gRPC settings that every shoal process must
// agree on: message size limits and flow-control windows for the data
// path, and keepalives so that a dead peer is noticed.
//
// Data travels in messages of at most MaxDataMessage bytes. gRPC's default
// flow-control windows (64 KiB, grown by BDP probing) cap one stream well
// below what loopback and a local disk can do, so the windows are fixed
// large here.
package transport

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

const (
	// MaxDataMessage is the most chunk data one WriteChunk or ReadChunk
	// message carries.
	MaxDataMessage = 1 << 20
	// MaxMessage bounds any message, with room for a full chunk report.
	MaxMessage = 256 << 20

	streamWindow = 8 << 20
	connWindow   = 64 << 20
)

// ServerOptions returns the options for every shoal gRPC server.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessage),
		grpc.MaxSendMsgSize(MaxMessage),
		grpc.ForceServerCodecV2(newCodec()),
		grpc.InitialWindowSize(streamWindow),
		grpc.InitialConnWindowSize(connWindow),
		grpc.ReadBufferSize(256 << 10),
		grpc.WriteBufferSize(256 << 10),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	}
}

// DialOptions returns the options for every shoal gRPC client connection.
// Connections are plaintext: shoal trusts its network (see README).
//
// The reconnect backoff is capped at 2 s (gRPC's default grows to 120 s):
// RPCs on a connection in backoff fail at once, so without the cap a
// manager or chunkserver that comes back after an outage would go unused
// for up to two minutes, longer than any operation's deadline.
func DialOptions() []grpc.DialOption {
	bc := backoff.DefaultConfig
	bc.BaseDelay = 100 * time.Millisecond
	bc.MaxDelay = 2 * time.Second
	return []grpc.DialOption{
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bc, MinConnectTimeout: 5 * time.Second}),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessage), grpc.MaxCallSendMsgSize(MaxMessage),
			grpc.ForceCodecV2(newCodec())),
		grpc.WithInitialWindowSize(streamWindow),
		grpc.WithInitialConnWindowSize(connWindow),
		grpc.WithReadBufferSize(256 << 10),
		grpc.WithWriteBufferSize(256 << 10),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}),
	}
}

// Dial opens a lazily connecting client connection to addr.
func Dial(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, DialOptions()...)
}
