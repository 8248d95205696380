package healer

import "context"

// NodeState is a chunkserver's state as the manager sees it. The zero value
// is Dead, so a node the manager forgot to classify is never read from,
// copied to or sent deletes.
type NodeState int

const (
	// Dead nodes missed their heartbeats: their replicas do not count, are
	// not read from and are not sent deletes.
	Dead NodeState = iota
	// Live nodes count toward replication and receive copies.
	Live
	// Draining nodes are being emptied: their replicas are valid copy
	// sources but do not count toward the wanted replication, and they are
	// deleted once the chunk has enough live replicas elsewhere. A draining
	// node with no replicas left is drained (Report.Drained).
	Draining
)

func (s NodeState) String() string {
	switch s {
	case Dead:
		return "dead"
	case Live:
		return "live"
	case Draining:
		return "draining"
	}
	return "unknown"
}

// Node is one chunkserver.
type Node struct {
	ID    string
	Addr  string
	Rack  string
	State NodeState
	// UsedBytes and CapacityBytes come from the node's last heartbeat.
	// CapacityBytes <= 0 means unknown: the node is taken as having room
	// but is placed on last.
	UsedBytes     int64
	CapacityBytes int64
}

// Replica is one copy of a chunk at a version, on a node.
type Replica struct {
	Node    string
	Version uint64
}

// Chunk is one chunk that may need work, with where its replicas are.
type Chunk struct {
	ID      uint64
	Version uint64 // the current (committed) version
	Length  int64
	Wanted  int // wanted replication; values below 1 are taken as 1
	// Holders are the ids of nodes holding the current version, whatever
	// the node's state (the healer looks the state up in View.Nodes; a
	// holder missing from View.Nodes is taken as dead).
	Holders []string
	// Stale are replicas at other versions; the manager lists only those
	// that are safe to delete.
	Stale []Replica
	// Corrupt are the ids of holders whose replica of the current version
	// is known to be corrupt. They are neither sources nor counted.
	Corrupt []string
}

// Orphan is a replica of a chunk no file refers to; the manager lists only
// those that are safe to delete.
type Orphan struct {
	Node    string
	ChunkID uint64
	Version uint64
}

// View is the manager's picture of the cluster for one pass.
type View struct {
	Nodes []Node
	// Chunks lists the chunks that may need work: at least every chunk that
	// is under- or over-replicated, has stale or corrupt replicas, or has a
	// replica on a draining node. Listing healthy chunks too is harmless.
	Chunks  []Chunk
	Orphans []Orphan
	// SafeMode is set until enough chunkservers have reported after a
	// manager restart; the healer then neither copies nor deletes.
	SafeMode bool
}

// Inventory is the healer's read-only view of the cluster. The manager
// implements it.
type Inventory interface {
	// View returns the current picture. It is called once per pass.
	View(ctx context.Context) (View, error)
}

// Replicator carries out the healer's decisions. The manager implements it
// (by commanding chunkservers); tests use an in-memory fake.
type Replicator interface {
	// Replicate has node to pull chunk c (at c.Version) from one of from,
	// in order of preference, verify it and store it. It blocks until the
	// copy is done or failed, and returns early with ctx's error when ctx
	// ends. The healer charges its per-node copy limit to from[0] and to;
	// the others in from are fallbacks.
	Replicate(ctx context.Context, c Chunk, from []Node, to Node) error
	// Delete removes the replica of chunkID at version from node. It may
	// return once the delete is queued (for the node's next heartbeat),
	// before it happens, and must be idempotent: the healer repeats a
	// delete that the view still shows after Config.PendingTimeout.
	Delete(ctx context.Context, node string, chunkID, version uint64) error
}

// Placer picks up to n distinct targets for a new replica out of
// candidates: live nodes that do not hold the chunk, have room for it and
// have a free copy slot. holders are the live nodes that hold (or are
// receiving) the chunk, for rack spreading. It must return a subset of
// candidates; anything else in its result is ignored. Placers are called
// from one goroutine at a time.
type Placer func(candidates []Node, n int, holders []Node) []Node
