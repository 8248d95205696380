// Package placement chooses the chunkservers that receive the replicas of a
// chunk. It is a pure function of its inputs (no clock, no randomness, no
// I/O), so the manager can call it under its own locks and tests can pin
// every decision down in a table.
//
// The policy, in order of priority:
//
//  1. Never a node listed in Request.Exclude, never the same node twice, and
//     never a node without Request.Need bytes free (a node reporting no
//     capacity has no room).
//  2. Spread over racks: each pick goes to a rack holding the fewest
//     replicas so far, counting the racks in Request.Racks (replicas that
//     already exist). The empty rack name is a rack like any other.
//  3. Least full first (used/capacity), then by node id so that the result
//     is deterministic.
package placement
