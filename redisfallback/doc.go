// Package redisfallback keeps an optional second copy of cache entries in
// Redis, carries invalidations over Redis pub/sub, and makes sure Redis
// trouble never becomes a request error or a noticeable delay.
//
// A node wraps each group's loader with Fallback.Wrap. On a miss the wrapped
// loader asks Redis for a copy before it goes to the source, so a new owner
// after a rebalance or a restart, and a node whose owner does not answer,
// can skip the database. Every value loaded from the source is written back
// asynchronously through a bounded queue.
//
// # Why a copy can be trusted
//
// A Redis copy can outlive the invalidation that should have removed it: a
// DEL can fail while Redis is down, a write that timed out can still land
// later, and a restarted or replicated Redis can bring old data back. So no
// copy is trusted for being there. Each copy carries its generation (the
// writing node's hybrid-logical-clock reading taken when the load began) and
// is served only when that generation is above
//
//   - the latest invalidation generation this node knows for the key (Known),
//     read after the copy arrived, so an invalidation that raced the read
//     wins; and
//   - the distrust floor: a reading of this node's clock taken when the
//     circuit breaker closed after an outage, when a new connection found a
//     server with another run_id (a restart or a failover, which may have
//     restored old data), or when DeleteAll was called. Copies written
//     before an outage may have missed deletes that other nodes issued while
//     Redis was down; this node never serves them.
//
// The writer applies the same rule before each write, and drops a write
// whenever Known changed while its value was loading: an invalidation that
// arrived meanwhile makes the value stale whatever its generation says (the
// sender's clock may be behind this node's). A key with a pending delete is
// neither read nor written by this node until the delete has landed.
//
// A write that timed out may still land later, after a delete sent on
// another connection. Such a copy carries its old generation, so nodes that
// know the invalidation skip it, and the breaker's distrust floor covers
// the node that wrote it once enough operations failed to open it.
//
// # Deletes
//
// Deletes are kept in a pending set, not in the write queue, so they are
// never dropped for lack of room: they are retried every RetryInterval until
// they land or until the longest TTL any copy can have has passed (by then
// the copy has expired anyway). If more than QueueSize deletes are pending,
// a further one raises the distrust floor instead of waiting, which is just
// as safe for this node.
//
// # Circuit breaker
//
// FailuresToOpen consecutive failures (errors or timeouts, each bounded by
// OpTimeout) open the breaker. While it is open no request touches Redis:
// loads go straight to the source and writes are skipped. A background
// prober pings Redis every RetryInterval and closes the breaker when Redis
// answers, raising the distrust floor first.
//
// # Layout
//
// Entries of a user-keyed group live in one hash per user,
// Prefix+"u:"+userID, with the group name as field, so DeleteUser is a
// single DEL. Other entries live at Prefix+"g:"+group+":"+key, field "v".
// Every write is HSET and PEXPIRE in one pipeline.
package redisfallback
