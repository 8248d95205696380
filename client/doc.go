// Package client is the Go client of a shoal cluster, used by the CLI,
// the FUSE mount and the tests. It makes namespace calls to the manager,
// writes files through the chunkserver replication pipeline, and reads
// them back with failover, end-to-end checksums and readahead.
//
// # Writes
//
// A file is cut into chunks of Attr.ChunkSize bytes; chunk i covers
// [i*cs, (i+1)*cs). File.WriteAt copies the data into a per-chunk
// "generation" in memory and returns. A generation holds the bytes bound
// for the next version of its chunk and keeps them until that version is
// committed, so that a failed pipeline can be rebuilt and the bytes sent
// again, and so that reads see them meanwhile.
//
//   - Sequential writes (an append at the chunk's current end: cp, put)
//     make an eager generation. Its goroutine calls AllocateChunk at once,
//     opens a WriteChunk stream to the first target with the others as the
//     chain, and sends the data as it arrives, in messages of at most
//     1 MiB. When the chunk is full it is sealed: the stream is closed, the
//     chain seals and reports, and the writer moves on to the next chunk
//     while this one is committed. Several chunks are in flight at once,
//     bounded by the write buffer.
//   - A new file (Create with CreateOptions.Allocate, then OpenCreated,
//     as the mount does) comes with chunk 0 allocated by the create. The
//     first write-out of chunk 0 uses that allocation, if under a minute
//     old, instead of calling AllocateChunk; it waits until the
//     generation is sealed or past 256 KiB, so that a small file still
//     goes to its replicas side by side. An allocation left unused
//     expires at the manager; the fallbacks below are unchanged.
//   - Chunk 0 of at most Config.InlineMax bytes, counting the inline
//     bytes it replaces (a small file), is not sent to chunkservers: its
//     generation waits until sealed, then its whole content goes in the
//     commit and the manager keeps it in its records (inline.go). The
//     create's unused allocation is handed back with that commit.
//   - Other writes (random writes, overwrites of sealed data) collect
//     dirty runs. On Sync (or buffer pressure) the generation allocates
//     version v+1 of the chunk (base v, the holders of v as targets) and
//     sends only the dirty runs; each replica builds v+1 from its local v.
//     A write behind an eager generation's stream seals that generation
//     and starts a patch on top of it.
//   - Pipeline recovery: if the stream fails, or fewer than min_replicas
//     replicas report the seal, the generation allocates again with the
//     failed nodes excluded and resends all its bytes (for a new chunk
//     that is a new chunk id). It fails, with ENOSPC or EIO naming the
//     chunk, only when too few nodes are left or after six pipelines. A
//     step of a stream that stalls for RPCTimeout counts as a failure.
//   - Commits go to the manager in seal order, batched: the ready sealed
//     generations at the head of the queue go in one CommitChunks, which
//     names the replicas that acknowledged (the healer tops up the rest)
//     and raises the file size. It sets the file's mtime to the time of
//     the commit, unless File.SetMtime was called after the last write
//     (utimens on an open file): then to that time, so a utimens does not
//     have to wait for the data it follows. A commit refused as STALE_VERSION (another
//     writer committed the chunk first) is redone alone: the generation is
//     written again on the new version and committed; last writer wins,
//     per byte.
//   - The write buffer (Config.WriteBuffer) is shared by all files of a
//     Client. A write that would exceed it waits for sealing chunks to
//     finish; if nothing is sealing, every open generation of every file
//     is sealed first (a partial chunk then gets later appends as a v+1
//     patch). Writes block on a full buffer; they do not fail. Runs of at
//     least 512 KiB get 1 MiB buffers that go back to a pool (runBufs)
//     when their generation commits, so a stream of large writes stops
//     allocating once the first generations are in.
//
// # What is durable when
//
// After WriteAt returns, the data is in this process's memory only.
// After Flush or Close returns nil, everything written before the call is
// sealed on at least min_replicas chunkservers (in their files, not yet
// fsynced) and the manager has committed the chunk versions and the size
// in one transaction (in its log, not yet fsynced): other clients read
// it, and it survives a crash of any process, this one included (for
// a chunk 0 kept inline: its bytes are in that transaction). After
// Sync returns nil it is also on disk: each chunk fsynced on at least
// min_replicas of its replicas, and the manager's log fsynced; it
// survives a crash of every machine. (HDFS makes the same split:
// hflush/close, hsync.) A write that fails in the background is reported
// by the next WriteAt, and by every later Flush, Sync and Close (the
// error is sticky: the file's unflushed data may be lost). File.Truncate flushes first, then has the
// manager set the size.
//
// # Reads
//
// Open fetches the file's layout (close-to-open consistency: a file
// another client closed or synced is seen by the next Open). ReadAt
// splits the request by chunk: a chunk missing from the layout is a hole
// of zeros, bytes past a chunk's length (but within the file size) are
// zeros, and reads stop at the size with io.EOF. Each chunk is read from
// its first replica; every 64 KiB block is checked against the CRC32C
// (Castagnoli) the chunkserver stored at write time. A read of part of a
// block asks for exactly its bytes (ReadChunkRequest.exact): the
// chunkserver verifies the whole block and sends the bytes with the
// CRC32C of the block's bytes before and after them, which the client
// combines with its own CRC of the bytes it got (crc32_combine) to check
// the stored value, so a 4 KiB read moves 4 KiB, still verified end to
// end. A replica on a chunkserver of this host is read from its file
// (Config.LocalReads, localread.go; package internal/localread): the
// chunkserver hands over read-only descriptors on a Unix socket, and the
// client reads the whole blocks around the range, O_DIRECT where
// aligned (into buffers in huge pages, package internal/hugebuf: one
// disk request a page), and checks each against the stored table, so
// nothing crosses a socket and the chunkserver does no work. Such
// replicas are tried first. Opened replicas are kept (128, each asked
// again after 10 s, which bounds how long an old layout reads a version
// the chunkserver has since deleted); any failure on this path (no
// socket, a refused open, a read error, a mismatch) retries that read
// over TCP to the same chunkserver, which then reports what it finds.
// Other reads go over the raw read protocol (package internal/rawread,
// rawconn.go): plain TCP to the chunkserver's port, one read at a time
// per connection, the data received from the socket straight into the
// buffer the read returns. Up to 16 idle connections are kept per
// chunkserver; one that the chunkserver closed (a restart) is replaced
// on its next use, once, before the replica counts as unreachable. A
// chunkserver that answers only gRPC is read over gRPC: a read of at
// most 256 KiB is one request on a long-lived ReadChunks stream (up to
// 16 kept per chunkserver while its connection is ready), a larger one a
// ReadChunk call. Readahead starts only when a read continues the
// previous one twice in a row (or starts at offset 0). On an error, a
// timeout (RPCTimeout) or a mismatch the next replica is tried; a
// replica that is corrupt, short or missing (NotFound, DataLoss) is
// reported to the manager with ReportBadReplica, one that is merely
// unreachable is not. When every replica fails the layout is fetched
// again and the read retried once; then it fails with EIO naming the
// chunk and each replica's error. A read at the end of a file whose
// layout is older than a second refetches it, so a growing file is seen.
// The File's own buffered writes are laid over what the replicas return
// (read-your-writes).
//
// Readahead: reads that continue where the last one ended (give or take
// the kernel's reordering) are served from 1 MiB pages keyed by chunk
// version, and the pages up to Config.ReadAhead ahead are fetched in the
// background, all of them at once (each is one disk read on the
// chunkserver, so that is the disk's queue depth too). ReadAtVec, which
// the mount calls, returns a sequential read's bytes as slices of the
// pages, which the mount hands to the kernel uncopied, and a release
// func for when the kernel has them. Whole pages are pooled 1 MiB
// buffers, counted by reference (the cache, the fetch, each read), and
// go back to the pool with the last one. A random read drops the pages.
//
// # Concurrency
//
// A Client and a File are safe for concurrent use; the mount calls
// ReadAt and WriteAt on one File from several goroutines. A File's lock
// guards its bookkeeping only and is never held across an RPC or a wait.
// Concurrent writes to the same bytes land in some order (the last one
// to take the lock wins). Every goroutine has an owner: a File's chunk
// writers and readahead fetches are stopped and waited for by File.Close
// (after its Sync) or Client.Close, which aborts unsynced writes;
// bad-replica reports by Client.Close. These background goroutines use a
// lifetime context held by the File, cancelled on close; every caller's
// ctx still bounds the caller's wait.
//
// # Retries
//
// Each manager RPC attempt is bounded by Config.RPCTimeout. Unavailable
// (manager down or restarting) and DeadlineExceeded are retried with
// jittered exponential backoff until Config.OpTimeout, then fail with
// EIO saying that the manager at its address is unreachable. A cancelled
// ctx returns context.Canceled (the mount turns it into EINTR).
//
// Such a failure is ambiguous: the manager may have applied the request
// and lost the reply. Every operation is retried anyway, and the retry's
// answer is interpreted:
//
//   - Lookup, GetAttr, SetAttr, GetLayout, ReadDir, non-exclusive Create,
//     ReleaseInode, AllocateChunk (an unused allocation is an orphan the
//     healer removes): idempotent.
//   - Unlink and Rmdir: ENOENT after an ambiguous attempt is success.
//   - Rename: ENOENT after an ambiguous attempt is success if the old
//     name is gone and the new one exists.
//   - Mkdir, Symlink, Link: EEXIST after an ambiguous attempt is success
//     if the name is a directory / the same symlink / the same inode.
//   - Exclusive Create: EEXIST is returned as it is. It may be our own
//     lost success, but O_EXCL is used for locking, so a false EEXIST
//     (and a stray empty file) is the safer mistake.
//   - CommitChunks: a retry of an applied commit is refused as stale, and
//     the generation is written and committed once more: correct, at the
//     price of one extra chunk version.
//
// Errors: fromStatus (errors.go) is the one place where a gRPC status,
// with its ErrorDetail reason, becomes an error wrapping a syscall.Errno;
// operations wrap it in an *OpError with the operation and the path or
// inode.
package client
