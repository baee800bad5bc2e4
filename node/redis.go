package node

import (
	"github.com/avion/authnode/auth"
	"github.com/avion/authnode/redisfallback"
	"github.com/avion/authnode/transport"
)

// startRedis builds the Redis fallback when RedisURL is set; it connects
// only when Run starts it, and nothing ever waits on it for long.
func (n *Node) startRedis() error {
	if n.cfg.RedisURL == "" {
		return nil
	}
	cfg := redisfallback.DefaultConfig(n.cfg.RedisURL)
	cfg.Logger, cfg.Now, cfg.Observe = n.log, n.cfg.Now, n.obs.RedisCommand
	fb, err := redisfallback.New(cfg, n.clock, n.cache.Known)
	if err != nil {
		return err
	}
	n.redis = fb
	return nil
}

// byUser reports whether group is keyed by user id: its Redis copies live
// in the user's one hash, so one delete removes them all.
func byUser(group string) bool {
	return group == auth.GroupUsers || group == auth.GroupSessions
}

// invalidated drops the Redis copies of what this node just invalidated.
// Every node does, for every invalidation it processes (a call, gossip, the
// change feed): a node sends its delete after its own earlier copy writes,
// so no write it had in flight can land after the delete.
func (n *Node) invalidated(group, key string, all bool) {
	switch {
	case n.redis == nil:
	case all:
		n.redis.DeleteAll()
	case byUser(group):
		n.redis.DeleteUser(key)
	default:
		n.redis.Delete(group, key)
	}
}

// RedisStats returns the Redis fallback's counters and breaker state; ok
// is false without Redis.
func (n *Node) RedisStats() (st redisfallback.Stats, ok bool) {
	if n.redis == nil {
		return st, false
	}
	return n.redis.Stats(), true
}

// redisInfo is the fallback's state for the admin cluster view.
func (n *Node) redisInfo() *transport.RedisInfo {
	st, ok := n.RedisStats()
	if !ok {
		return nil
	}
	return &transport.RedisInfo{
		CircuitOpen: st.Open, Hits: st.Hits, Misses: st.Misses, StaleSkipped: st.StaleSkipped,
		WriteDrops: st.WriteDrops, Errors: st.Errors, DeletesPending: st.DeletesPending,
	}
}
