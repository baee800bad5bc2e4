package auth

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// JWKSConfig says where an issuer's keys come from and how they are kept
// fresh.
type JWKSConfig struct {
	URL  string // fetched over HTTP(S); or
	File string // read from disk
	// Interval is the refresh period when the response sets no
	// Cache-Control max-age; a max-age is honoured within [MinInterval,
	// MaxInterval]. Defaults 5 min, 1 min, 1 h.
	Interval, MinInterval, MaxInterval time.Duration
	// Cooldown is the least time between two refreshes caused by unknown
	// kids, so a flood of made-up kids makes at most one fetch per
	// cooldown. Default 30 s.
	Cooldown time.Duration
	// Wait bounds how long a request with an unknown kid waits for the
	// refresh it triggered. Default 500 ms.
	Wait time.Duration
	// MaxBytes bounds a JWKS document. Default 1 MiB.
	MaxBytes int64
	Client   *http.Client
	Now      func() time.Time
	// OnRemoved is called with the kids that disappeared in a refresh, so
	// cached validations signed with them can be purged.
	OnRemoved func(kids []string)
}

// JWKS keeps one issuer's key set: fetched at start, refreshed
// periodically and on unknown kids (single-flight, rate-limited). A failed
// fetch keeps the last good set; a key that cannot be parsed is skipped and
// counted. Safe for concurrent use.
type JWKS struct {
	cfg     JWKSConfig
	base    context.Context // parent of every fetch; cancelled by Close
	cancel  context.CancelFunc
	keys    atomic.Pointer[[]Key]
	flight  singleflight.Group
	skipped atomic.Int64
	fetches atomic.Int64
	lastOK  atomic.Int64 // unix nanos of the last successful refresh
	n       jwksCounters
	onFetch atomic.Pointer[func(time.Duration, error)]
	next    atomic.Int64 // unix nanos of the next periodic refresh
	// version counts changes of the key set; epoch counts the changes that
	// removed a kid or changed its key, which end cached validations.
	version, epoch atomic.Uint64

	mu          sync.Mutex
	lastUnknown time.Time
}

// NewJWKS checks cfg; call Refresh (or Run) to load the keys.
func NewJWKS(cfg JWKSConfig) (*JWKS, error) {
	if (cfg.URL == "") == (cfg.File == "") {
		return nil, errors.New("auth: a JWKS needs exactly one of a URL and a file")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Interval, 5*time.Minute)
	def(&cfg.MinInterval, time.Minute)
	def(&cfg.MaxInterval, time.Hour)
	def(&cfg.Cooldown, 30*time.Second)
	def(&cfg.Wait, 500*time.Millisecond)
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 1 << 20
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	j := &JWKS{cfg: cfg}
	j.base, j.cancel = context.WithCancel(context.Background())
	j.keys.Store(&[]Key{})
	return j, nil
}

// Close cancels any fetch in flight; Refresh fails afterwards.
func (j *JWKS) Close() { j.cancel() }

// Keys returns the current keys; the caller must not modify them.
func (j *JWKS) Keys() []Key { return *j.keys.Load() }

// JWKSStats counts what a JWKS has done since NewJWKS.
type JWKSStats struct {
	Fetches  uint64    // fetches started
	Failures uint64    // fetches that failed (the last good set stayed)
	Skipped  uint64    // keys skipped because they could not be parsed
	LastOK   time.Time // the last successful fetch; zero before the first
	Keys     int       // keys in the current set
	// KidHits and KidMisses count tokens whose kid was found in the set,
	// and those whose kid was not.
	KidHits, KidMisses uint64
	// UnknownKidRefreshes counts refreshes started (or joined) because a
	// token named an unknown kid: at most one per Cooldown.
	UnknownKidRefreshes uint64
}

type jwksCounters struct {
	failures, kidHits, kidMisses, unknownRefreshes atomic.Uint64
}

// Stats returns the counters.
func (j *JWKS) Stats() JWKSStats {
	st := JWKSStats{
		Fetches: uint64(j.fetches.Load()), Failures: j.n.failures.Load(), Skipped: uint64(j.skipped.Load()),
		Keys: len(j.Keys()), KidHits: j.n.kidHits.Load(), KidMisses: j.n.kidMisses.Load(),
		UnknownKidRefreshes: j.n.unknownRefreshes.Load(),
	}
	if ns := j.lastOK.Load(); ns != 0 {
		st.LastOK = time.Unix(0, ns)
	}
	return st
}

// OnFetch sets fn to be called after every fetch with its duration and
// result (nil error: the set was replaced). fn must not block.
func (j *JWKS) OnFetch(fn func(time.Duration, error)) {
	if fn == nil {
		j.onFetch.Store(nil)
		return
	}
	j.onFetch.Store(&fn)
}

// countKid counts a token's kid as found in the set or not.
func (j *JWKS) countKid(found bool) {
	if found {
		j.n.kidHits.Add(1)
	} else {
		j.n.kidMisses.Add(1)
	}
}

// Refresh fetches the set now (sharing a fetch already in flight). On
// failure the current keys stay.
func (j *JWKS) Refresh(ctx context.Context) error {
	done := j.flight.DoChan("refresh", func() (any, error) { return nil, j.refresh(j.base) })
	select {
	case r := <-done:
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (j *JWKS) refresh(ctx context.Context) error {
	j.fetches.Add(1)
	start := time.Now()
	err := j.replace(ctx)
	if err != nil {
		j.n.failures.Add(1)
	}
	if fn := j.onFetch.Load(); fn != nil {
		(*fn)(time.Since(start), err)
	}
	return err
}

// replace fetches and parses the set and makes it current.
func (j *JWKS) replace(ctx context.Context) error {
	doc, maxAge, err := j.fetch(ctx)
	if err != nil {
		return err
	}
	keys, skipped, err := ParseJWKS(doc)
	if err != nil {
		return err
	}
	j.skipped.Add(int64(skipped))
	old := j.Keys()
	j.keys.Store(&keys)
	now := j.cfg.Now()
	j.lastOK.Store(now.UnixNano())
	j.next.Store(now.Add(j.interval(maxAge)).UnixNano())
	removed, added := diffKeys(old, keys)
	if len(removed) > 0 || added {
		j.version.Add(1)
	}
	if len(removed) > 0 {
		j.epoch.Add(1)
		if j.cfg.OnRemoved != nil {
			j.cfg.OnRemoved(removed)
		}
	}
	return nil
}

// Version changes whenever the key set changes.
func (j *JWKS) Version() uint64 { return j.version.Load() }

// Epoch changes whenever a kid disappears or its key or algorithm changes:
// a validation made with an older epoch must not be served again.
func (j *JWKS) Epoch() uint64 { return j.epoch.Load() }

func (j *JWKS) interval(maxAge time.Duration) time.Duration {
	if maxAge <= 0 {
		return j.cfg.Interval
	}
	return min(max(maxAge, j.cfg.MinInterval), j.cfg.MaxInterval)
}

// diffKeys returns the kids of old that are gone from cur or whose key or
// algorithm changed, and whether cur has a kid old lacks.
func diffKeys(old, cur []Key) (removed []string, added bool) {
	have := make(map[string]Key, len(cur))
	for _, k := range cur {
		have[k.ID] = k
	}
	for _, k := range old {
		c, ok := have[k.ID]
		if !ok || !sameKey(k, c) {
			removed = append(removed, k.ID)
		}
		delete(have, k.ID)
	}
	return removed, len(have) > 0
}

// sameKey reports whether a and b are the same key for the same algorithm.
func sameKey(a, b Key) bool {
	if a.Algorithm != b.Algorithm || !bytes.Equal(a.Secret, b.Secret) {
		return false
	}
	pub, ok := a.Public.(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(b.Public) || a.Public == nil && b.Public == nil
}

// fetch reads the document and the max-age the server allows.
func (j *JWKS) fetch(ctx context.Context) ([]byte, time.Duration, error) {
	if j.cfg.File != "" {
		f, err := os.Open(j.cfg.File)
		if err != nil {
			return nil, 0, fmt.Errorf("auth: JWKS file: %w", err)
		}
		defer f.Close()
		b, err := readCapped(f, j.cfg.MaxBytes)
		return b, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.cfg.URL, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("auth: JWKS URL: %w", err)
	}
	resp, err := j.cfg.Client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("auth: JWKS fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("auth: JWKS fetch: HTTP %d", resp.StatusCode)
	}
	b, err := readCapped(resp.Body, j.cfg.MaxBytes)
	return b, maxAge(resp.Header.Get("Cache-Control")), err
}

func readCapped(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS read: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, errors.New("auth: JWKS document too large")
	}
	return b, nil
}

func maxAge(cacheControl string) time.Duration {
	for part := range strings.SplitSeq(cacheControl, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "max-age="); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				return time.Duration(n) * time.Second
			}
		}
	}
	return 0
}

// UnknownKid is called when a token names a kid the set lacks. At most one
// refresh per Cooldown is started for this reason; the caller waits for it
// at most Wait and reports whether the keys may have changed.
func (j *JWKS) UnknownKid(ctx context.Context) bool {
	j.mu.Lock()
	now := j.cfg.Now()
	if now.Sub(j.lastUnknown) < j.cfg.Cooldown {
		j.mu.Unlock()
		return false
	}
	j.lastUnknown = now
	j.mu.Unlock()
	j.n.unknownRefreshes.Add(1)
	done := j.flight.DoChan("refresh", func() (any, error) { return nil, j.refresh(j.base) })
	wait := time.NewTimer(j.cfg.Wait)
	defer wait.Stop()
	select {
	case r := <-done:
		return r.Err == nil
	case <-wait.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// Run refreshes the set when it is due until ctx ends. Fetches run in
// singleflight's goroutine, bounded by the HTTP client's timeout and
// cancelled by Close.
func (j *JWKS) Run(ctx context.Context) {
	for {
		wait := time.Until(time.Unix(0, j.next.Load()))
		if j.next.Load() == 0 {
			wait = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(wait, 0)):
		}
		if err := j.Refresh(ctx); err != nil {
			// Keep the last good set; try again after the minimum interval.
			j.next.Store(j.cfg.Now().Add(j.cfg.MinInterval).UnixNano())
		}
	}
}
