// Package shard holds a node's named cache groups and the groupcache-style
// get path.
//
// Every key has one owner, named by the ring (see package ring). Get on the
// owner reads the owner shard and, on a miss, loads the key from the source
// once: concurrent misses share one load (singleflight), loads are capped
// node-wide, and a load is detached from the caller that started it, so a
// cancelled caller or a panicking loader does not wedge the key for others.
// Get on any other node reads a short-lived hot copy or forwards the request
// to the owner with the sender's ring fingerprint and a hop count of one. A
// forwarded request is never forwarded again: the receiver answers as owner or
// loads the key itself, so two nodes with different rings cannot bounce a key
// between them. When the owner does not answer within the peer timeout the
// node loads the key itself (a degraded load, counted); an owner whose calls
// keep failing is suspected and skipped for a while.
//
// # Invalidation
//
// Invalidate removes a key's owner entry and hot copy and makes every load or
// forward of that key that is in flight on this node lose: its result is
// neither stored nor returned, and the load runs again. The rule is local and
// needs no clock agreement: each load takes a reading of the node's hybrid
// logical clock before it reads the source, each invalidation raises a floor
// to a later reading, and a result is kept only if its reading is above the
// floor. Floors are striped by key hash, so an invalidation can also make an
// unrelated key's in-flight load run again; it never keeps a stale one.
//
// Across nodes, invalidate the owner before the others: a non-owner that has
// processed an invalidation may still fetch from an owner that has not, and
// only the owner-first order makes that fetch return the new state.
//
// Entries carry the generation (hybrid-logical-clock reading) at which the
// owner started loading them, for callers that memoise derived results.
package shard
