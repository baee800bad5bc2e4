package node

import (
	"context"
	"errors"
	"time"

	"github.com/avion/authnode/auth"
	"github.com/avion/authnode/metrics"
	"github.com/avion/authnode/redisfallback"
)

// snapshot is the state the metrics collector exports at each scrape.
func (n *Node) snapshot() metrics.Snapshot {
	select {
	case <-n.started:
	default: // nothing is built yet
		return metrics.Snapshot{}
	}
	snap := n.Current()
	s := metrics.Snapshot{
		Version: n.cfg.Version,
		Members: n.cluster.MemberStates(),
		Ring: metrics.Ring{
			Members: snap.Len(), Epoch: snap.Epoch(), PartitionsOwned: snap.PartitionsOwned(n.cfg.Name),
		},
		SuspectPeers: len(n.cache.Suspects()),
		Flushes:      n.cache.Flushes(),
		JWKS:         n.jwksStats(),
	}
	if n.auth.tokens != nil {
		s.Tokens = n.auth.tokens.Stats()
	}
	for _, name := range n.cache.Groups() {
		g := n.cache.Group(name)
		st := g.Stats()
		if loads := n.direct[name]; loads != nil { // cache mode off: auth reads the source directly
			st.Misses, st.Loads = loads.Load(), loads.Load()
		}
		s.Groups = append(s.Groups, metrics.Group{Name: name, Stats: st, Size: g.Size})
	}
	if counted, ok := n.cfg.Source.(interface{ Requests() map[string]uint64 }); ok {
		s.Source = counted.Requests()
	}
	if st, ok := n.RedisStats(); ok {
		s.Redis = new(redisfallback.Stats)
		*s.Redis = st
	}
	return s
}

// jwksStats returns each JWKS issuer's counters.
func (n *Node) jwksStats() map[string]auth.JWKSStats {
	if n.cfg.Validator == nil {
		return nil
	}
	out := map[string]auth.JWKSStats{}
	for _, is := range n.cfg.Validator.Issuers() {
		if is.JWKS != nil {
			out[is.Issuer] = is.JWKS.Stats()
		}
	}
	return out
}

// observe records one API call of op that began at start and ended with
// err. Callers defer it in a closure over their named error, which keeps
// the hit path free of allocations.
func (n *Node) observe(op metrics.Op, start time.Time, err error) {
	n.obs.Observe(op, time.Since(start), failed(err))
}

// failed reports whether err is the node's failure rather than an answer:
// a rejected token or API key, bad input and a caller that went away are
// answers.
func failed(err error) bool {
	return err != nil && !answer(err) // the nil test first: answer allocates
}

// answer reports whether err is an answer to the caller rather than a
// failure.
func answer(err error) bool {
	var rejected *auth.KeyError
	return auth.ErrorCode(err) != "" || errors.As(err, &rejected) ||
		errors.Is(err, auth.ErrInvalidInput) || errors.Is(err, context.Canceled)
}
