// Package healer decides and drives repairs of chunk replicas: it copies
// under-replicated chunks chunkserver-to-chunkserver, trims
// over-replicated ones, deletes stale versions, orphans and corrupt
// replicas, and empties draining nodes.
//
// It depends on nothing of shoal's: it reads the cluster through its own
// Inventory (one method returning a View) and acts through its own
// Replicator (Replicate and Delete). The manager adapts itself to both and
// runs the Healer's Run loop as a goroutine it owns; the tests use
// in-memory fakes.
//
// # A pass
//
// Run makes a pass at start, every Config.Interval, after each Kick and
// after each finished copy. A pass reads the View and calls plan, a pure
// function of the view and the healer's bookkeeping, which decides:
//
//   - Safe mode: nothing (the replica map is still being rebuilt).
//   - A chunk's live replicas are its holders on Live nodes that are not
//     corrupt. Replicas on Draining nodes are sources but not live;
//     replicas on Dead nodes are neither.
//   - Under-replicated (live < wanted) with a readable source: copies to
//     wanted-live new targets chosen by the Placer among the live nodes
//     that do not hold the chunk and have room. Sources are the live
//     holders, then the draining ones. Chunks with the fewest live
//     replicas go first, then by chunk id.
//   - No readable source: missing; reported, nothing done.
//   - Enough live replicas (live >= wanted): corrupt replicas and
//     replicas on draining nodes are deleted (this is how a node drains);
//     extras above wanted are deleted from the rack holding the most
//     replicas, fullest node first. The deletes of a chunk never take it
//     below wanted live replicas, and the last readable copy is never
//     deleted, corrupt or not.
//   - Stale versions and orphans are deleted (the manager lists only those
//     safe to delete). Dead nodes are sent no deletes.
//
// # Copies and the limits
//
// Copies run in goroutines owned by the Healer; a pass starts them and
// returns without waiting, and Run waits for all of them before it
// returns. A node takes part in copies as the source (from[0]) or the
// target up to Config.MaxSlotsPerNode slots at a time, where a copy takes
// one slot per SlotBytes of its chunk (so the limit bounds bytes in flight
// for large chunks and the count for small ones), and at most
// Config.MaxCopies run overall. Copies that do not fit stay queued: the
// next pass plans them again. Config.BandwidthLimit spreads copy starts so
// the bytes they move stay under the rate.
//
// The view learns of a finished copy or an issued delete only from a later
// heartbeat. So the healer remembers both: a chunk being copied to a node
// counts that node as receiving it (not copied twice), and a replica being
// deleted counts as gone (not trimmed twice, which could take a chunk
// below wanted), until the view catches up or Config.PendingTimeout
// passes. A failed copy is counted, logged and planned again on the next
// pass, preferring another source and another target.
//
// # Concurrency
//
// One goroutine (Run's) plans and issues deletes; copy goroutines only
// update counters and bookkeeping under the Healer's mutex, which is never
// held while calling the Inventory, the Replicator or OnPass. Stats and
// Kick are safe from any goroutine.
package healer
