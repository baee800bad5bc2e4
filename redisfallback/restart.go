package redisfallback

import (
	"bufio"
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// servers remembers the run_id of the Redis server last connected to.
type servers struct {
	mu    sync.Mutex
	runID string
}

// onConnect runs on every new connection before its first command. A
// server whose run_id differs from the last one seen was restarted or
// replaced (a failover): it may hold copies restored from a snapshot taken
// before deletes that have long landed, so every copy written until now is
// distrusted, even on a node whose breaker never opened. The mutex makes a
// second new connection wait until the floor is raised.
//
// A server that refuses INFO is not checked; a connection on which INFO
// failed otherwise is dropped, as its state is unknown.
func (f *Fallback) onConnect(ctx context.Context, cn *redis.Conn) error {
	info, err := cn.Info(ctx, "server").Result()
	var refused redis.Error
	switch {
	case errors.As(err, &refused):
		return nil
	case err != nil:
		return err
	}
	id := runID(info)
	if id == "" {
		return nil
	}
	f.servers.mu.Lock()
	defer f.servers.mu.Unlock()
	if f.servers.runID != "" && f.servers.runID != id {
		f.distrust(f.clock.Now())
		f.log.Warn("redisfallback: Redis restarted or replaced; older copies are not served", "addr", f.addr)
	}
	f.servers.runID = id
	return nil
}

// runID extracts run_id from the reply to INFO server.
func runID(info string) string {
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "run_id:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
