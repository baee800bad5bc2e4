package node_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/avion/authnode/auth"
	"github.com/avion/authnode/node"
	"github.com/avion/authnode/node/nodetest"
	"github.com/avion/authnode/redisfallback"
	"github.com/avion/authnode/redisfallback/redistest"
	"github.com/avion/authnode/store"
)

// The Redis fallback's default layout: every user-keyed entry of a user
// lives in one hash, the group name as field.
const userHashPrefix = "authnode:u:"

func userHash(user string) string { return userHashPrefix + user }

// redisCluster starts n nodes over src, with Redis at redisURL unless it is
// empty.
func redisCluster(t *testing.T, n int, src *store.Store, redisURL string, more func(i int, cfg *node.Config)) []*nodetest.Node {
	t.Helper()
	return nodetest.Start(t, n, nodetest.Options{Config: func(i int, cfg *node.Config) {
		cfg.Source, cfg.RedisURL = src, redisURL
		if more != nil {
			more(i, cfg)
		}
	}})
}

// population adds n users named prefix-000… to src: an even user is an
// editor (may write posts:1), an odd one a viewer (may not).
func population(t testing.TB, src *store.Store, prefix string, n int) []string {
	t.Helper()
	var b strings.Builder
	b.WriteString("users:\n")
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("%s-%03d", prefix, i)
		role := "editor"
		if !mayWrite(i) {
			role = "viewer"
		}
		fmt.Fprintf(&b, "  - {id: %s, roles: [%s]}\n", users[i], role)
	}
	importPolicy(t, src, b.String(), false)
	return users
}

// mayWrite is what the policy says about population user i and posts:1.
func mayWrite(i int) bool { return i%2 == 0 }

func policyLoads(src *store.Store) uint64 { return src.Requests()[store.KindUserPolicy] }

// askAll asks whether every user may write posts:1 through every node and
// fails on an error or an answer the policy does not give.
func askAll(t *testing.T, nodes []*nodetest.Node, users []string) {
	t.Helper()
	ctx := context.Background()
	for _, n := range nodes {
		for i, u := range users {
			if ok, err := n.Authorize(ctx, u, "posts:1", "write", nil); err != nil || ok != mayWrite(i) {
				t.Fatalf("%s: Authorize(%s) = %v, %v; the policy says %v", n.Name(), u, ok, err, mayWrite(i))
			}
		}
	}
}

// waitUserHashes polls until Redis holds a copy of every one of users.
func waitUserHashes(t *testing.T, rc *redis.Client, users []string, within time.Duration) {
	t.Helper()
	keys := make([]string, len(users))
	for i, u := range users {
		keys[i] = userHash(u)
	}
	deadline := time.Now().Add(within)
	for {
		n, err := rc.Exists(context.Background(), keys...).Result()
		if err == nil && n == int64(len(keys)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis holds copies of %d of %d users after %v (%v)", n, len(keys), within, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// redisStats returns n's Redis fallback counters; n must have Redis.
func redisStats(t *testing.T, n *nodetest.Node) redisfallback.Stats {
	t.Helper()
	st, ok := n.RedisStats()
	if !ok {
		t.Fatalf("%s has no Redis fallback", n.Name())
	}
	return st
}

// waitBreakers polls until every node's breaker is open (or closed) and
// returns, by node, how long that took.
func waitBreakers(t *testing.T, nodes []*nodetest.Node, open bool, within time.Duration) map[string]time.Duration {
	t.Helper()
	start := time.Now()
	took := map[string]time.Duration{}
	for len(took) < len(nodes) {
		for _, n := range nodes {
			if _, done := took[n.Name()]; !done && redisStats(t, n).Open == open {
				took[n.Name()] = time.Since(start).Round(time.Millisecond)
			}
		}
		if len(took) == len(nodes) {
			break
		}
		if time.Since(start) > within {
			t.Fatalf("after %v only these breakers are open=%v: %v", within, open, took)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return took
}

// ownerOf returns the node that owns user in nodes' ring.
func ownerOf(t *testing.T, nodes []*nodetest.Node, user string) *nodetest.Node {
	t.Helper()
	name := nodes[0].Current().Owner(user)
	for _, n := range nodes {
		if n.Name() == name {
			return n
		}
	}
	t.Fatalf("%s is owned by %q, not one of the nodes", user, name)
	return nil
}

// timing is one request: when it started and how long it took.
type timing struct {
	at   time.Time
	took time.Duration
}

// percentiles summarises the requests of ts that started in [from, to).
func percentiles(ts []timing, from, to time.Time) string {
	var ds []time.Duration
	for _, s := range ts {
		if !s.at.Before(from) && s.at.Before(to) {
			ds = append(ds, s.took)
		}
	}
	if len(ds) == 0 {
		return "no requests"
	}
	slices.Sort(ds)
	at := func(p float64) string {
		return fmt.Sprintf("%.1fµs", float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Nanoseconds())/1e3)
	}
	return fmt.Sprintf("%6d requests  p50 %9s  p99 %9s  max %9s", len(ds), at(0.50), at(0.99), at(1))
}

// Load shape for the Redis-outage measurements: every worker asks one
// question every loadEvery, through the nodes in turn; one more goroutine
// asks a never-seen user on its owner every missEvery (a miss: Redis read,
// source load, copy written) and one invalidates a random user every
// invalidateEvery (a delete and a publish on Redis).
const (
	loadWorkers     = 4
	loadEvery       = 500 * time.Microsecond
	missEvery       = 5 * time.Millisecond
	invalidateEvery = 20 * time.Millisecond
)

// loadResult is what runLoad saw.
type loadResult struct {
	reqs, misses  []timing
	failed        atomic.Int64
	invalidations atomic.Int64
	minAcks       atomic.Int64
	mu            sync.Mutex
	firstFailures []string
}

func (r *loadResult) fail(format string, args ...any) {
	r.failed.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.firstFailures) < 10 {
		r.firstFailures = append(r.firstFailures, fmt.Sprintf(format, args...))
	}
}

// runLoad runs the load shape above on nodes for d. Every answer is checked
// against the policy; an error or a wrong answer counts as a failure.
// fresh prefixes the never-seen users.
func runLoad(nodes []*nodetest.Node, users []string, fresh string, d time.Duration) *loadResult {
	r := &loadResult{}
	r.minAcks.Store(int64(len(nodes)))
	ctx := context.Background()
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	perWorker := make([][]timing, loadWorkers)
	for w := range loadWorkers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			tick := time.NewTicker(loadEvery)
			defer tick.Stop()
			for k := 0; time.Now().Before(end); k++ {
				i := rng.IntN(len(users))
				n := nodes[(w+k)%len(nodes)]
				start := time.Now()
				ok, err := n.Authorize(ctx, users[i], "posts:1", "write", nil)
				perWorker[w] = append(perWorker[w], timing{start, time.Since(start)})
				if err != nil || ok != mayWrite(i) {
					r.fail("%s: Authorize(%s) = %v, %v", n.Name(), users[i], ok, err)
				}
				<-tick.C
			}
		})
	}
	wg.Go(func() {
		tick := time.NewTicker(missEvery)
		defer tick.Stop()
		for k := 0; time.Now().Before(end); k++ {
			n := nodes[k%len(nodes)]
			u := ownedBy(n, fmt.Sprintf("%s-%d", fresh, k))
			start := time.Now()
			ok, err := n.Authorize(ctx, u, "posts:1", "write", nil)
			r.misses = append(r.misses, timing{start, time.Since(start)})
			if err != nil || ok {
				r.fail("%s: Authorize(%s), a user the source does not know = %v, %v", n.Name(), u, ok, err)
			}
			<-tick.C
		}
	})
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(99, 7))
		tick := time.NewTicker(invalidateEvery)
		defer tick.Stop()
		for k := 0; time.Now().Before(end); k++ {
			acks, err := nodes[k%len(nodes)].InvalidateUser(ctx, users[rng.IntN(len(users))])
			if err != nil {
				r.fail("InvalidateUser: %v", err)
			}
			r.invalidations.Add(1)
			if int64(acks.Acknowledged) < r.minAcks.Load() {
				r.minAcks.Store(int64(acks.Acknowledged))
			}
			<-tick.C
		}
	})
	wg.Wait()
	r.reqs = slices.Concat(perWorker...)
	return r
}

// checkLoad fails t if r saw any failed request.
func checkLoad(t *testing.T, what string, r *loadResult) {
	t.Helper()
	if f := r.failed.Load(); f > 0 {
		t.Errorf("%s: %d failed requests of %d; first: %s", what, f, len(r.reqs)+len(r.misses), strings.Join(r.firstFailures, "; "))
	}
}

// TestRedisKilledUnderLoad: a 3-node cluster with Redis configured serves a
// steady load (hits, misses that read Redis, invalidations that delete and
// publish on it); Redis is killed halfway through. Not one request fails
// or gets a wrong answer, and the latency with Redis dead stays close to
// the latency with Redis healthy and without Redis at all (logged, prefix
// "redis-kill:"). Every node's breaker opens during the outage; once Redis
// is back every breaker closes again and each node writes copies again.
func TestRedisKilledUnderLoad(t *testing.T) {
	const phase = 3 * time.Second
	srv := redistest.Start(t)
	rc := srv.Client()
	src := openStore(t, clusterPolicy)
	users := population(t, src, "load", 200)
	nodes := redisCluster(t, 3, src, srv.URL(), nil)

	askAll(t, nodes, users)
	waitUserHashes(t, rc, users, 10*time.Second) // copies are written: Redis is in use

	// One run of 2·phase; Redis dies at its middle.
	start := time.Now()
	var killedAt time.Time
	loadsAtKill := uint64(0)
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		time.Sleep(phase)
		loadsAtKill = policyLoads(src)
		killedAt = time.Now()
		srv.Kill()
	}()
	loadsBefore := policyLoads(src)
	res := runLoad(nodes, users, "fresh-redis", 2*phase)
	<-killed
	end := time.Now()
	loadsAfter := policyLoads(src)
	checkLoad(t, "Redis killed under load", res)

	// Every breaker opened: with Redis dead nothing waits on it.
	var dead []string
	for _, n := range nodes {
		st := redisStats(t, n)
		if !st.Open {
			t.Errorf("%s: the breaker is closed after %v with Redis dead", n.Name(), end.Sub(killedAt).Round(time.Millisecond))
		}
		dead = append(dead, fmt.Sprintf("%s open=%v errors=%d bypassed=%d deletes pending=%d publish drops=%d",
			n.Name(), st.Open, st.Errors, st.Bypassed, st.DeletesPending, st.PublishDrops))
	}

	srv.Restart()
	closedAfter := waitBreakers(t, nodes, false, 15*time.Second)
	writingAfter := waitCopiesWritten(t, rc, nodes, 15*time.Second)
	askAll(t, nodes, users)

	// The same load without Redis configured at all, on a cluster of its
	// own over the same store.
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() { n.Stop(t) })
	}
	wg.Wait()
	plain := redisCluster(t, 3, src, "", nil)
	askAll(t, plain, users)
	plainLoadsBefore := policyLoads(src)
	plainStart := time.Now()
	plainRes := runLoad(plain, users, "fresh-plain", phase)
	plainEnd := time.Now()
	checkLoad(t, "without Redis", plainRes)

	t.Logf("redis-kill: load: %d workers × one Authorize every %v through 3 nodes over %d users, plus a never-seen user on its owner every %v (a miss) and an InvalidateUser every %v",
		loadWorkers, loadEvery, len(users), missEvery, invalidateEvery)
	t.Logf("redis-kill: Redis healthy (%v)  all: %s", killedAt.Sub(start).Round(time.Millisecond), percentiles(res.reqs, start, killedAt))
	t.Logf("redis-kill: Redis healthy             misses: %s", percentiles(res.misses, start, killedAt))
	t.Logf("redis-kill: Redis killed  (%v)  all: %s", end.Sub(killedAt).Round(time.Millisecond), percentiles(res.reqs, killedAt, end))
	t.Logf("redis-kill: Redis killed              misses: %s", percentiles(res.misses, killedAt, end))
	t.Logf("redis-kill: first 100 ms after the kill misses: %s", percentiles(res.misses, killedAt, killedAt.Add(100*time.Millisecond)))
	t.Logf("redis-kill: no Redis      (%v)  all: %s", plainEnd.Sub(plainStart).Round(time.Millisecond), percentiles(plainRes.reqs, plainStart, plainEnd))
	t.Logf("redis-kill: no Redis                  misses: %s", percentiles(plainRes.misses, plainStart, plainEnd))
	t.Logf("redis-kill: failed requests: %d of %d with Redis killed halfway, %d of %d without Redis; invalidations %d (fewest acks %d of 3) and %d (fewest acks %d of 3)",
		res.failed.Load(), len(res.reqs)+len(res.misses), plainRes.failed.Load(), len(plainRes.reqs)+len(plainRes.misses),
		res.invalidations.Load(), res.minAcks.Load(), plainRes.invalidations.Load(), plainRes.minAcks.Load())
	t.Logf("redis-kill: source policy loads: %d with Redis healthy, %d with Redis killed, %d without Redis",
		loadsAtKill-loadsBefore, loadsAfter-loadsAtKill, policyLoads(src)-plainLoadsBefore)
	t.Logf("redis-kill: at the end of the outage: %s", strings.Join(dead, "; "))
	t.Logf("redis-kill: Redis restarted; breakers closed within %v; each node wrote a new copy within %v", closedAfter, writingAfter)
}

// probeSeq numbers the users waitCopiesWritten asks: each is new.
var probeSeq atomic.Int64

// waitCopiesWritten polls until every node writes copies to Redis: a node
// loads a user it owns that nobody asked before, and its copy is written
// only while its breaker is closed. It returns, by node, how long that
// took.
func waitCopiesWritten(t *testing.T, rc *redis.Client, nodes []*nodetest.Node, within time.Duration) map[string]time.Duration {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	deadline := start.Add(within)
	probes := map[string][]string{}
	took := map[string]time.Duration{}
	for len(took) < len(nodes) {
		for _, n := range nodes {
			if _, done := took[n.Name()]; done {
				continue
			}
			if ps := probes[n.Name()]; len(ps) > 0 && rc.Exists(ctx, ps...).Val() > 0 {
				took[n.Name()] = time.Since(start).Round(time.Millisecond)
				continue
			}
			u := ownedBy(n, fmt.Sprintf("probe-%d-%s", probeSeq.Add(1), n.Name()))
			if ok, err := n.Authorize(ctx, u, "posts:1", "write", nil); err != nil || ok {
				t.Fatalf("%s: Authorize(%s) = %v, %v", n.Name(), u, ok, err)
			}
			probes[n.Name()] = append(probes[n.Name()], userHash(u))
		}
		if len(took) == len(nodes) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v only these nodes write copies to Redis again: %v", within, took)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return took
}

// TestRedisFlushedServesNothingStale: once a user's policy changed and
// InvalidateUser returned, no node ever answers from the old policy: with
// Redis flushed after the invalidation; with Redis frozen while the
// invalidation happens (its deletes wait in the socket, or, once the
// freeze has opened every breaker, are held back and the old copy
// outlives the freeze); and with the old copy put back into Redis (a
// restored backup, a lagging replica) while the owner, a new owner and
// then a restarted one read it and refuse it.
func TestRedisFlushedServesNothingStale(t *testing.T) {
	srv := redistest.Start(t)
	rc := srv.Client()
	src := openStore(t, clusterPolicy)
	nodes := redisCluster(t, 3, src, srv.URL(), func(_ int, cfg *node.Config) {
		cfg.ChangePoll = time.Hour // only InvalidateUser tells the nodes
	})
	ctx := context.Background()

	// victim gives user the editor role, asks it everywhere, waits for its
	// Redis copy and returns the copy.
	victim := func(t *testing.T, user string) string {
		t.Helper()
		importPolicy(t, src, "users:\n  - {id: "+user+", roles: [editor]}\n", false)
		expectEverywhere(t, nodes, user, "posts:1", "write", true)
		deadline := time.Now().Add(10 * time.Second)
		for {
			old, err := rc.HGet(ctx, userHash(user), auth.GroupUsers).Result()
			if err == nil {
				return old
			}
			if time.Now().After(deadline) {
				t.Fatalf("no Redis copy of %s: %v", user, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	revoke := func(t *testing.T, user string, via *nodetest.Node) time.Duration {
		t.Helper()
		importPolicy(t, src, "users:\n  - {id: "+user+", roles: []}\n", false)
		start := time.Now()
		acks, err := via.InvalidateUser(ctx, user)
		took := time.Since(start)
		if err != nil || acks.Acknowledged != acks.Members {
			t.Fatalf("InvalidateUser(%s) = %+v, %v", user, acks, err)
		}
		return took
	}
	// neverOld asks every node rounds times and fails on the old answer.
	neverOld := func(t *testing.T, nodes []*nodetest.Node, user string, rounds int) {
		t.Helper()
		for r := range rounds {
			for _, n := range nodes {
				if ok, err := n.Authorize(ctx, user, "posts:1", "write", nil); err != nil || ok {
					t.Fatalf("round %d: %s answers %v, %v: the old policy", r, n.Name(), ok, err)
				}
			}
		}
	}
	// waitOldCopyGone polls until Redis no longer holds old for user.
	waitOldCopyGone := func(t *testing.T, user, old string) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			cur, err := rc.HGet(ctx, userHash(user), auth.GroupUsers).Result()
			if (err == nil && cur != old) || errors.Is(err, redis.Nil) {
				return time.Since(start)
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("the old copy of %s is still in Redis after 10s (%v)", user, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	t.Run("flushed after the invalidation", func(t *testing.T) {
		user := "flushed"
		victim(t, user)
		revoke(t, user, nodes[1])
		if err := rc.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		neverOld(t, nodes, user, 300)
	})

	// Frozen: the server takes connections and commands but answers
	// nothing. Invalidated at once, the nodes' deletes wait in the socket
	// and run when it resumes; invalidated after the freeze opened every
	// breaker, they are held back and retried once the breakers close, so
	// the old copy outlives the freeze.
	for _, breakersOpen := range []bool{false, true} {
		name := map[bool]string{false: "frozen while invalidating", true: "frozen, breakers open, then invalidating"}[breakersOpen]
		t.Run(name, func(t *testing.T) {
			waitBreakers(t, nodes, false, 10*time.Second)
			user := map[bool]string{false: "frozen", true: "held-back"}[breakersOpen]
			old := victim(t, user)
			srv.Pause()
			defer srv.Resume() // never leave Redis frozen for the other tests
			var took time.Duration
			if !breakersOpen {
				took = revoke(t, user, ownerOf(t, nodes, user))
			}
			// Misses while frozen: each waits at most OpTimeout until
			// three failures open its node's breaker.
			var frozen []timing
			for k := range 60 {
				n := nodes[k%len(nodes)]
				u := ownedBy(n, fmt.Sprintf("%s-miss-%d", user, k))
				start := time.Now()
				if ok, err := n.Authorize(ctx, u, "posts:1", "write", nil); err != nil || ok {
					t.Fatalf("%s with Redis frozen: Authorize(%s) = %v, %v", n.Name(), u, ok, err)
				}
				frozen = append(frozen, timing{start, time.Since(start)})
			}
			if breakersOpen {
				took = revoke(t, user, ownerOf(t, nodes, user))
				for _, n := range nodes {
					if st := redisStats(t, n); !st.Open || st.DeletesPending == 0 {
						t.Fatalf("%s with Redis frozen: breaker open %v, %d deletes pending; want open and the user's delete held back", n.Name(), st.Open, st.DeletesPending)
					}
				}
			}
			neverOld(t, nodes, user, 100)
			srv.Resume()
			resumed := time.Now()
			still, err := rc.HGet(ctx, userHash(user), auth.GroupUsers).Result()
			neverOld(t, nodes, user, 300)
			gone := waitOldCopyGone(t, user, old)
			waitBreakers(t, nodes, false, 10*time.Second)
			for deadline := time.Now().Add(10 * time.Second); ; {
				pending := 0
				for _, n := range nodes {
					pending += redisStats(t, n).DeletesPending
				}
				if pending == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d deletes still pending 10s after Redis resumed", pending)
				}
				time.Sleep(5 * time.Millisecond)
			}
			neverOld(t, nodes, user, 100)
			t.Logf("redis-freeze: %s: InvalidateUser took %v; misses with Redis frozen: %s",
				name, took.Round(time.Microsecond), percentiles(frozen, time.Time{}, resumed))
			t.Logf("redis-freeze: %s: old copy in Redis right after the resume: %v (%v); gone %v after the resume",
				name, err == nil && still == old, err, gone.Round(time.Millisecond))
		})
	}

	t.Run("old copy restored", func(t *testing.T) {
		waitBreakers(t, nodes, false, 10*time.Second)
		user := "restored"
		old := victim(t, user)
		dump, err := rc.Dump(ctx, userHash(user)).Result()
		if err != nil {
			t.Fatal(err)
		}
		owner := ownerOf(t, nodes, user)
		var others []*nodetest.Node
		for _, n := range nodes {
			if n != owner {
				others = append(others, n)
			}
		}
		dels := redisStat(t, rc, "commandstats", "cmdstat_del")
		revoke(t, user, others[0])
		// Every node drops the copy, once or twice (users and sessions
		// share the hash). InvalidateUser returned after every node
		// queued its deletes, so once the DEL count has been still for a
		// while none can land on the copy put back below.
		waitStill(t, func() int64 { return redisStat(t, rc, "commandstats", "cmdstat_del") }, dels+int64(len(nodes)))

		// newCopy waits until a load's copy of the new policy has landed:
		// no write can land on what is put back afterwards.
		newCopy := func() {
			t.Helper()
			for deadline := time.Now().Add(10 * time.Second); ; {
				cur, err := rc.HGet(ctx, userHash(user), auth.GroupUsers).Result()
				if err == nil && cur != old {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("no copy of the new policy of %s written: %v", user, err)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		// restore puts the old copy back.
		restore := func() {
			t.Helper()
			if err := rc.RestoreReplace(ctx, userHash(user), 0, dump).Err(); err != nil {
				t.Fatal(err)
			}
			if cur, err := rc.HGet(ctx, userHash(user), auth.GroupUsers).Result(); err != nil || cur != old {
				t.Fatalf("restored copy: %v", err)
			}
		}
		// refused fails t unless reader found a copy it did not trust
		// since its StaleSkipped count was before.
		refused := func(t *testing.T, reader *nodetest.Node, before uint64) {
			t.Helper()
			if redisStats(t, reader).StaleSkipped == before {
				t.Fatalf("%s never read the restored copy: the test proves nothing", reader.Name())
			}
		}

		// The owner knows the invalidation.
		restore()
		skipped := redisStats(t, owner).StaleSkipped
		neverOld(t, nodes, user, 100)
		refused(t, owner, skipped)

		// A new owner has the user in neither its shard nor its hot
		// copies.
		newCopy()
		owner.Stop(t)
		nodetest.WaitConverged(t, 10*time.Second, others...)
		interim := ownerOf(t, others, user)
		restore()
		skipped = redisStats(t, interim).StaleSkipped
		loads := policyLoads(src)
		neverOld(t, others, user, 300)
		refused(t, interim, skipped)
		t.Logf("the new owner %s refused the restored copy and loaded %s from the source %d time(s)", interim.Name(), user, policyLoads(src)-loads)

		// A node restarted under the old name owns the user again and
		// starts with empty memory: what it knows comes from its peers.
		newCopy()
		cfg := node.LocalConfig(owner.Name())
		cfg.Logger = nodetest.Logger(t)
		cfg.Join = []string{others[0].GossipAddr()}
		cfg.Source, cfg.RedisURL, cfg.ChangePoll = src, srv.URL(), time.Hour
		again := nodetest.Run(t, cfg)
		all := append(slices.Clone(others), again)
		nodetest.WaitConverged(t, 20*time.Second, all...)
		if o := ownerOf(t, all, user); o.Name() != owner.Name() {
			t.Fatalf("%s owns %s after the restart, want %s", o.Name(), user, owner.Name())
		}
		// Catching up on the invalidation, it drops the user's copy too;
		// the old one goes back only after that delete.
		for deadline := time.Now().Add(10 * time.Second); rc.Exists(ctx, userHash(user)).Val() != 0; {
			if time.Now().After(deadline) {
				t.Fatalf("the restarted %s never dropped the Redis copy of %s: did it catch up on the invalidation?", again.Name(), user)
			}
			time.Sleep(5 * time.Millisecond)
		}
		restore()
		skipped = redisStats(t, again).StaleSkipped
		loads = policyLoads(src)
		neverOld(t, []*nodetest.Node{again}, user, 1)
		refused(t, again, skipped)
		neverOld(t, all, user, 300)
		t.Logf("the restarted owner refused the restored copy and loaded %s from the source %d time(s)", user, policyLoads(src)-loads)
	})
}

// waitStill polls read until it returns at least atLeast and then the
// same value for 100 ms.
func waitStill(t *testing.T, read func() int64, atLeast int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	last, since := read(), time.Now()
	for last < atLeast || time.Since(since) < 100*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatalf("counter at %d after 10s, want at least %d and still for 100ms", last, atLeast)
		}
		time.Sleep(10 * time.Millisecond)
		if v := read(); v != last {
			last, since = v, time.Now()
		}
	}
}

// redisStat reads a counter from INFO section: field:value, or for
// commandstats field:calls=N,….
func redisStat(t *testing.T, rc *redis.Client, section, field string) int64 {
	t.Helper()
	info, err := rc.Info(context.Background(), section).Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(info) {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":")
		if !ok {
			continue
		}
		v = strings.TrimPrefix(v, "calls=")
		v, _, _ = strings.Cut(v, ",")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("INFO %s: %s: %v", section, line, err)
		}
		return n
	}
	return 0 // commandstats omits commands never called
}

// rollingRestart warms a 3-node cluster with users asked through every
// node, then restarts each node in turn (a graceful stop, a new node under
// the same name), asks every user through every node again after each
// restart, and returns the source policy loads of the warm-up and of each
// restart.
func rollingRestart(t *testing.T, redisURL string, rc *redis.Client) (cold uint64, restarts []uint64) {
	src := openStore(t, clusterPolicy)
	users := population(t, src, "roll", 300)
	// No entry may expire during the test: every load counted is caused
	// by a restart.
	more := func(_ int, cfg *node.Config) { cfg.AuthTTL = 5 * time.Minute }
	nodes := redisCluster(t, 3, src, redisURL, more)
	before := policyLoads(src)
	askAll(t, nodes, users)
	cold = policyLoads(src) - before
	if rc != nil {
		waitUserHashes(t, rc, users, 10*time.Second)
	}
	for i := range nodes {
		name := nodes[i].Name()
		live := slices.Delete(slices.Clone(nodes), i, i+1)
		stopStart := time.Now()
		nodes[i].Stop(t)
		nodetest.WaitConverged(t, 10*time.Second, live...)
		left := time.Since(stopStart)
		cfg := node.LocalConfig(name)
		cfg.Logger = nodetest.Logger(t)
		cfg.Join = []string{live[0].GossipAddr()}
		cfg.Source, cfg.RedisURL = src, redisURL
		more(i, &cfg)
		nodes[i] = nodetest.Run(t, cfg)
		joined := nodetest.WaitConverged(t, 20*time.Second, nodes...)
		before, hits := policyLoads(src), int64(0)
		if rc != nil {
			hits = redisStat(t, rc, "stats", "keyspace_hits")
		}
		askAll(t, nodes, users)
		restarts = append(restarts, policyLoads(src)-before)
		served := ""
		if rc != nil {
			served = fmt.Sprintf("; Redis found %d copies for the new owners", redisStat(t, rc, "stats", "keyspace_hits")-hits)
		}
		t.Logf("rolling-restart: %s left in %v, its replacement joined in %v%s", name, left.Round(time.Millisecond), joined.Round(time.Millisecond), served)
	}
	return cold, restarts
}

func sum(xs []uint64) (s uint64) {
	for _, x := range xs {
		s += x
	}
	return s
}

// TestRollingRestartLoadsLittleWithRedis: with Redis configured, a
// rolling restart of a 3-node cluster costs the source well below a third
// of a cold start: a new owner finds the entries it takes over in Redis.
// Without Redis the same restart reloads every moved entry (logged for
// comparison, prefix "rolling-restart:").
func TestRollingRestartLoadsLittleWithRedis(t *testing.T) {
	var withRedis, without []uint64
	var coldRedis, coldPlain uint64
	ran := t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		coldRedis, withRedis = rollingRestart(t, srv.URL(), srv.Client())
		total := sum(withRedis)
		t.Logf("rolling-restart: with Redis: cold start %d loads; restart of node-0 %d loads, node-1 %d, node-2 %d; restarts total %d (%.1f%% of a cold start)",
			coldRedis, withRedis[0], withRedis[1], withRedis[2], total, 100*float64(total)/float64(coldRedis))
		if 3*total >= coldRedis {
			t.Errorf("the rolling restart loaded %d policies from the source, a cold start %d: want well below a third of it", total, coldRedis)
		}
	})
	t.Run("no redis", func(t *testing.T) {
		coldPlain, without = rollingRestart(t, "", nil)
		total := sum(without)
		t.Logf("rolling-restart: without Redis: cold start %d loads; restart of node-0 %d loads, node-1 %d, node-2 %d; restarts total %d (%.1f%% of a cold start)",
			coldPlain, without[0], without[1], without[2], total, 100*float64(total)/float64(coldPlain))
		if ran && len(withRedis) == 3 && total <= sum(withRedis) {
			t.Errorf("without Redis the restart loaded %d policies, with Redis %d: Redis saved nothing", total, sum(withRedis))
		}
	})
}

// TestCacheModeRedis: in cache mode redis (each node's memory in front of
// Redis, no ring) two nodes answer as the policy says, a user asked on
// node-0 and then on node-1 is loaded from the source once (node-1 reads
// node-0's copy), and after a policy change and InvalidateUser both answer
// from the new policy.
func TestCacheModeRedis(t *testing.T) {
	srv := redistest.Start(t)
	rc := srv.Client()
	src := openStore(t, clusterPolicy+"  - {id: erin, roles: [editor]}\n")
	nodes := redisCluster(t, 2, src, srv.URL(), func(_ int, cfg *node.Config) {
		cfg.CacheMode = node.ModeRedis
		cfg.ChangePoll = time.Hour // only InvalidateUser tells the nodes
	})
	ctx := context.Background()
	for _, n := range nodes {
		if mode := n.ClusterInfo().CacheMode; mode != node.ModeRedis {
			t.Fatalf("%s: cache mode %q", n.Name(), mode)
		}
	}

	before := policyLoads(src)
	if ok, err := nodes[0].Authorize(ctx, "erin", "posts:1", "write", nil); err != nil || !ok {
		t.Fatalf("node-0: %v, %v", ok, err)
	}
	waitUserHashes(t, rc, []string{"erin"}, 5*time.Second)
	for range 3 {
		for _, n := range nodes {
			if ok, err := n.Authorize(ctx, "erin", "posts:1", "write", nil); err != nil || !ok {
				t.Fatalf("%s: %v, %v", n.Name(), ok, err)
			}
		}
	}
	if loads := policyLoads(src) - before; loads != 1 {
		t.Fatalf("erin was loaded from the source %d times on two nodes, want once (node-1 reads node-0's copy)", loads)
	}
	if hits := redisStats(t, nodes[1]).Hits; hits != 1 {
		t.Fatalf("node-1 answered %d loads from a Redis copy, want 1 (erin)", hits)
	}
	wantMetrics(t, nodes[1].Metrics(), []wantSeries{
		{"authnode_redis_copy_reads_total", map[string]string{"result": "hit"}, 1},
		{"authnode_redis_circuit_open", nil, 0},
	})
	if n := metricValue(t, nodes[1].Metrics(), "authnode_redis_request_duration_seconds", map[string]string{"command": "hget"}); n < 1 {
		t.Fatalf("node-1 read a copy, but timed %v HGETs", n)
	}

	users := []string{"alice", "bob", "carol", "dave", "erin", "nobody"}
	resources := []string{"posts:1", "orgs:42:a", "orgs:43:a", "x"}
	actions := []string{"read", "write"}
	conds := []map[string]string{nil, {"region": "eu"}}
	for _, u := range users {
		for _, res := range resources {
			for _, act := range actions {
				for _, c := range conds {
					want := direct(t, src, u, res, act, c)
					for _, n := range nodes {
						if got, err := n.Authorize(ctx, u, res, act, c); err != nil || got != want {
							t.Fatalf("%s: Authorize(%s, %s, %s, %v) = %v, %v; the policy says %v", n.Name(), u, res, act, c, got, err, want)
						}
					}
				}
			}
		}
	}

	importPolicy(t, src, "users:\n  - {id: erin, roles: [viewer]}\n", false)
	if acks, err := nodes[1].InvalidateUser(ctx, "erin"); err != nil || acks.Acknowledged != 2 {
		t.Fatalf("InvalidateUser = %+v, %v", acks, err)
	}
	for range 100 {
		for _, n := range nodes {
			if ok, err := n.Authorize(ctx, "erin", "posts:1", "write", nil); err != nil || ok {
				t.Fatalf("%s answers from the old policy: %v, %v", n.Name(), ok, err)
			}
			if ok, err := n.Authorize(ctx, "erin", "posts:1", "read", nil); err != nil || !ok {
				t.Fatalf("%s does not answer from the new policy: %v, %v", n.Name(), ok, err)
			}
		}
	}
}
