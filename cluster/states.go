package cluster

import (
	"time"

	"github.com/hashicorp/memberlist"
)

// Member states MemberStates counts.
const (
	StateAlive  = "alive"  // in this node's view
	StateFailed = "failed" // declared dead and not back
	StateLeft   = "left"   // left gracefully and not back
)

// departureMemory is how long a departed member is remembered: a failed
// member that never returns (removed after a crash) stops counting as
// failed after it. A StatefulSet member that restarts returns sooner.
const departureMemory = time.Hour

// maxDepartures bounds the departed members remembered; the oldest go first.
const maxDepartures = 1024

// departure is a member that left this node's view.
type departure struct {
	state string // StateFailed or StateLeft
	at    time.Time
}

// MemberStates counts the members by state as this node's memberlist sees
// them: StateAlive (this node included), StateFailed and StateLeft for
// members that departed within the last hour and have not rejoined.
// Every state is present in the result.
func (c *Cluster) MemberStates() map[string]int {
	return c.events.states(time.Now())
}

func (e *events) states(now time.Time) map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]int{StateAlive: len(e.nodes), StateFailed: 0, StateLeft: 0}
	for name, d := range e.departed {
		if now.Sub(d.at) > departureMemory {
			delete(e.departed, name)
			continue
		}
		out[d.state]++
	}
	return out
}

// departedLocked records n's departure: a leave when its last metadata
// said it was leaving, else a failure (memberlist does not tell its
// callbacks which). It must be called during memberlist's NotifyLeave,
// the only time n may be read, with e.mu held.
func (e *events) departedLocked(n *memberlist.Node, now time.Time) string {
	state := StateFailed
	if m, err := DecodeMeta(n.Meta); err == nil && m.Leaving {
		state = StateLeft
	}
	if len(e.departed) >= maxDepartures {
		e.forgetOldestLocked()
	}
	e.departed[n.Name] = departure{state: state, at: now}
	return state
}

func (e *events) forgetOldestLocked() {
	var oldest string
	for name, d := range e.departed {
		if oldest == "" || d.at.Before(e.departed[oldest].at) {
			oldest = name
		}
	}
	delete(e.departed, oldest)
}
