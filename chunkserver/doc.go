// Package chunkserver stores chunk replicas on a local disk and serves
// them: the ChunkServer gRPC service (chained writes, ranged reads, small
// reads on long-lived streams, replication pulls, deletes), registration and heartbeats to the manager,
// and a scrubber.
//
// # Invariants
//
//   - A replica is named by (chunk id, version) and never changes once
//     sealed. A new version is a new replica, built from the local copy of
//     an older one plus patched ranges; the two coexist until the manager
//     deletes the old one.
//   - A replica is sealed only when its write stream ended cleanly, and
//     sealing is atomic (temporary file, rename in the Store): after a
//     crash of the process it is wholly there or absent. A stream that
//     breaks is discarded on every node of the chain. A seal survives a
//     crash of the machine once the replica is synced (file and directory
//     fsync): when the write asked for it (WriteChunkHeader.sync), for a
//     repair copy, or by SyncChunks, which a client's fsync calls. A torn
//     replica after a machine crash fails its header or checksums and is
//     reported corrupt, never served.
//   - Every 64 KiB block carries a CRC32C, written at seal time and checked
//     on every read, during replication (against the source's stored
//     values, end to end) and by the scrubber. Data that fails is never
//     served: the read ends with DataLoss/CORRUPT and the replica is
//     reported corrupt to the manager, which decides what to do with it.
//   - A replica's summary is the CRC32C of its block checksums
//     (chunk.Summary): equal replicas have equal summaries, which is how a
//     chain checks that every node sealed the same bytes.
//   - What the manager knows comes from reports: a full one at
//     registration, then the sealed/removed/corrupt changes in heartbeats.
//     A change stays queued until a heartbeat carrying it is acknowledged,
//     so a manager outage loses none. The manager's deletes are carried out
//     from heartbeat replies and DeleteChunks.
//   - The node id is the manager's, persisted in Config.Dir; a restarted
//     node registers under the same id.
//
// # Concurrency
//
// Every RPC runs in gRPC's handler goroutine, registered with the Server
// (begin/end) so that Close waits for it and cancels its context. A
// WriteChunk handler with a chain owns one forwarder goroutine: the
// handler receives a message, queues it for the forwarder (a bounded
// queue, which is the chain's backpressure) and writes it locally, so
// receiving, forwarding and the disk write overlap. The handler always
// stops and waits for its forwarder before it returns. A ReadChunks
// handler answers its stream's requests one at a time, in order; between
// them it waits in Recv, so an idle stream lasts until its client closes
// it (clients close idle streams on a GOAWAY, so that a graceful stop
// does not wait for them) or the connection goes. A raw read connection
// (ServeRaw) is served by the goroutine the Mux started for it, which
// takes begin/end around each read; Mux.Close, on the gRPC server's
// stop, closes every raw connection, so a stop never waits for an idle
// one (a read in flight is cut and its reader fails over). ServeLocal
// (short-circuit opens on a Unix socket, package localread) runs on its
// caller's goroutine, beside Run in internal/cluster, with one goroutine
// per connection, taking begin/end around each open; when its context
// ends it closes the listener and every connection and waits for them.
// ReplicateChunks
// copies its items on at most Config.ReplicateWorkers goroutines and waits
// for them. Run runs the heartbeat loop on the caller's goroutine, owns
// the scrubber goroutine, and returns only after it has ended.
//
// The Store is safe for concurrent use; the Server adds the peer
// connection cache (one connection per peer address, closed by Close), the
// pending reports and the node id, each behind its own mutex; none is held
// across I/O.
package chunkserver
