package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avion/authnode/hlc"
	"github.com/avion/authnode/shard"
)

// fakeSource is an in-memory Source that logs every call and can be told
// to fail.
type fakeSource struct {
	now func() time.Time

	mu       sync.Mutex
	keys     map[string]APIKeyRecord  // by key hash
	sessions map[string]SessionRecord // by user
	err      error                    // returned by every call when set
	log      []string                 // calls, and the fake invalidations, in order
}

func newFakeSource(now func() time.Time) *fakeSource {
	return &fakeSource{now: now, keys: map[string]APIKeyRecord{}, sessions: map[string]SessionRecord{}}
}

// logf appends one line to the call log.
func (s *fakeSource) logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, fmt.Sprintf(format, args...))
}

// record logs a source call and returns the injected error.
func (s *fakeSource) record(format string, args ...any) error {
	s.logf(format, args...)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *fakeSource) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *fakeSource) calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

func (s *fakeSource) UserPolicy(_ context.Context, userID string) (UserPolicy, error) {
	return UserPolicy{}, s.record("UserPolicy %s", userID)
}

func (s *fakeSource) APIKey(_ context.Context, keySHA256 string) (APIKeyRecord, error) {
	if err := s.record("APIKey %s", keySHA256); err != nil {
		return APIKeyRecord{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[keySHA256], nil
}

func (s *fakeSource) setKey(key string, r APIKeyRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.Found = true
	s.keys[KeyHash(key)] = r
}

func (s *fakeSource) Session(_ context.Context, userID string) (SessionRecord, error) {
	if err := s.record("Session %s", userID); err != nil {
		return SessionRecord{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.sessions[userID]
	if !s.now().Before(r.ExpiresAt) {
		return SessionRecord{}, nil // the store does not return expired sessions
	}
	return r, nil
}

func (s *fakeSource) PutSession(_ context.Context, userID string, data json.RawMessage, expiresAt time.Time) error {
	if err := s.record("PutSession %s", userID); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[userID] = SessionRecord{Found: true, Data: slices.Clone(data), ExpiresAt: expiresAt}
	return nil
}

func (s *fakeSource) DeleteSession(_ context.Context, userID string) error {
	if err := s.record("DeleteSession %s", userID); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, userID)
	return nil
}

func (s *fakeSource) RevokeTokens(_ context.Context, userID string, before time.Time) (time.Time, error) {
	return before, s.record("RevokeTokens %s", userID)
}

func (s *fakeSource) Watermarks(context.Context, time.Time) (map[string]time.Time, error) {
	return nil, s.record("Watermarks")
}

// loaderCache is a Cache over a shard.Loader, like one node's group: it
// loads a key on a miss, stamps it with the next generation and keeps it
// (past its TTL too, so expiry checks of its readers show) until dropped.
type loaderCache struct {
	loader shard.Loader
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]shard.Entry
	gen     hlc.Gen
	gets    []string // every key asked for
	err     error    // returned by Get when set
}

func newLoaderCache(loader shard.Loader, now func() time.Time, firstGen hlc.Gen) *loaderCache {
	return &loaderCache{loader: loader, now: now, entries: map[string]shard.Entry{}, gen: firstGen}
}

func (c *loaderCache) Get(ctx context.Context, key string) (shard.Entry, error) {
	c.mu.Lock()
	c.gets = append(c.gets, key)
	if c.err != nil {
		defer c.mu.Unlock()
		return shard.Entry{}, c.err
	}
	if e, ok := c.entries[key]; ok {
		c.mu.Unlock()
		return e, nil
	}
	c.gen++
	gen := c.gen
	c.mu.Unlock()
	v, err := c.loader.Load(ctx, key)
	if err != nil {
		return shard.Entry{}, fmt.Errorf("%w: %w", shard.ErrSourceFailed, err)
	}
	ttl := v.TTL
	if ttl <= 0 {
		ttl = time.Minute
	}
	e := shard.Entry{Value: v.Bytes, Gen: gen, Expires: c.now().Add(ttl)}
	c.mu.Lock()
	c.entries[key] = e
	c.mu.Unlock()
	return e, nil
}

func (c *loaderCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
}

func (c *loaderCache) asked() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.gets)
}

// fakeInvalidate is an InvalidateFunc that logs its calls in the source's
// call log, drops the key from the given caches and fails when told to.
type fakeInvalidate struct {
	src    *fakeSource
	caches map[string]*loaderCache // by group

	mu  sync.Mutex
	err error
}

func (f *fakeInvalidate) invalidate(_ context.Context, group, key string) error {
	f.src.logf("invalidate %s %s", group, key)
	f.mu.Lock()
	err := f.err
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if c := f.caches[group]; c != nil {
		c.drop(key)
	}
	return nil
}

func (f *fakeInvalidate) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// apiKeysRig is APIKeys over a fake source (whose key is a hash), a
// loader-backed owners cache, and a users cache whose entries (and the key
// states in them) the test sets.
type apiKeysRig struct {
	clk   *fakeClock
	src   *fakeSource
	keys  *loaderCache
	users *fakeUsers
	a     *APIKeys
}

func newAPIKeysRig(t *testing.T) *apiKeysRig {
	t.Helper()
	r := &apiKeysRig{clk: newFakeClock(now), users: &fakeUsers{entries: map[string]shard.Entry{}}}
	r.src = newFakeSource(r.clk.Now)
	r.keys = newLoaderCache(APIKeyLoader(r.src), r.clk.Now, 100)
	r.a = NewAPIKeys(r.keys, newTestAuthorizer(t, r.users), r.clk.Now)
	r.users.set("alice", 1, storedPolicy{Found: true})
	return r
}

// give stores key for rec's user in the source and, in the user's cached
// policy p (at gen), the key's state.
func (r *apiKeysRig) give(key string, rec APIKeyRecord, gen int, p storedPolicy) {
	r.src.setKey(key, rec)
	if p.Keys == nil {
		p.Keys = map[string]storedKey{}
	}
	p.Keys[KeyHash(key)] = newStoredKey(rec)
	r.users.set(rec.UserID, hlc.Gen(gen), p)
}

// checkNoPlaintext fails when err quotes the key.
func checkNoPlaintext(t *testing.T, err error, key string) {
	t.Helper()
	if err != nil && key != "" && strings.Contains(err.Error(), key) {
		t.Fatalf("the error quotes the plaintext key: %v", err)
	}
}

// TestAPIKeyVerify: every way a key is accepted or refused, through the
// cache over the source.
func TestAPIKeyVerify(t *testing.T) {
	t.Parallel()
	const key = "ak_live_0123456789abcdef"
	long := strings.Repeat("k", maxAPIKeyBytes)
	for _, tc := range []struct {
		name     string
		key      string
		rec      *APIKeyRecord // stored under key; nil: none
		user     *storedPolicy // stored for the record's user (gen 1); nil: unknown
		want     APIKeyInfo
		wantCode string
		noLookup bool // refused without reading the cache or the source
	}{
		{name: "valid, never expires", key: key, rec: &APIKeyRecord{UserID: "alice", Name: "ci", Scopes: []string{"read", "deploy"}},
			user: &storedPolicy{Found: true}, want: APIKeyInfo{UserID: "alice", Name: "ci", Scopes: []string{"read", "deploy"}}},
		{name: "valid, expires later", key: key, rec: &APIKeyRecord{UserID: "alice", Name: "ci", ExpiresAt: now.Add(time.Nanosecond)},
			user: &storedPolicy{Found: true}, want: APIKeyInfo{UserID: "alice", Name: "ci", ExpiresAt: now.Add(time.Nanosecond).UTC()}},
		{name: "a key of the maximum length", key: long, rec: &APIKeyRecord{UserID: "alice", Name: "long"},
			user: &storedPolicy{Found: true}, want: APIKeyInfo{UserID: "alice", Name: "long"}},
		{name: "unknown key", key: key, wantCode: KeyInvalid},
		{name: "revoked", key: key, rec: &APIKeyRecord{UserID: "alice", Revoked: true}, user: &storedPolicy{Found: true}, wantCode: KeyRevoked},
		{name: "expired", key: key, rec: &APIKeyRecord{UserID: "alice", ExpiresAt: now.Add(-time.Second)}, user: &storedPolicy{Found: true}, wantCode: KeyExpired},
		{name: "expires right now", key: key, rec: &APIKeyRecord{UserID: "alice", ExpiresAt: now}, user: &storedPolicy{Found: true}, wantCode: KeyExpired},
		{name: "user disabled", key: key, rec: &APIKeyRecord{UserID: "alice"}, user: &storedPolicy{Found: true, Disabled: true}, wantCode: KeyUserDisabled},
		{name: "unknown user", key: key, rec: &APIKeyRecord{UserID: "ghost"}, wantCode: KeyInvalid},
		{name: "record without a user", key: key, rec: &APIKeyRecord{UserID: ""}, wantCode: KeyInvalid},
		{name: "key no longer in its user's policy", key: key, rec: &APIKeyRecord{UserID: "bob"}, user: &storedPolicy{Found: true}, wantCode: KeyInvalid},
		{name: "empty key", key: "", wantCode: KeyInvalid, noLookup: true},
		{name: "key over 1024 bytes", key: long + "k", rec: &APIKeyRecord{UserID: "alice"}, user: &storedPolicy{Found: true}, wantCode: KeyInvalid, noLookup: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newAPIKeysRig(t)
			switch {
			case tc.rec != nil && tc.user != nil && tc.rec.UserID == "bob":
				r.src.setKey(tc.key, *tc.rec)
				r.users.set("bob", 1, *tc.user) // bob's policy lacks the key
			case tc.rec != nil && tc.user != nil:
				r.give(tc.key, *tc.rec, 1, *tc.user)
			case tc.rec != nil:
				r.src.setKey(tc.key, *tc.rec)
			}
			info, err := r.a.Verify(context.Background(), tc.key)
			checkNoPlaintext(t, err, tc.key)
			if tc.wantCode != "" {
				var ke *KeyError
				if !errors.As(err, &ke) || ke.Code != tc.wantCode {
					t.Fatalf("Verify = %+v, %v; want key error %q", info, err, tc.wantCode)
				}
				if info.UserID != "" {
					t.Fatalf("a refused key returned %+v", info)
				}
			} else {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if info.UserID != tc.want.UserID || info.Name != tc.want.Name || !slices.Equal(info.Scopes, tc.want.Scopes) ||
					!info.ExpiresAt.Equal(tc.want.ExpiresAt) || info.ExpiresAt.Location() != time.UTC {
					t.Fatalf("Verify = %+v, want %+v", info, tc.want)
				}
			}
			asked := r.keys.asked()
			if tc.noLookup {
				if len(asked) != 0 || len(r.src.calls()) != 0 {
					t.Fatalf("a malformed key was looked up: cache %v, source %v", asked, r.src.calls())
				}
				return
			}
			if !slices.Equal(asked, []string{KeyHash(tc.key)}) {
				t.Fatalf("cache keys asked %v, want only the key's hash", asked)
			}
		})
	}
}

// TestAPIKeyFollowsItsUser: a key's state is read from its user's cached
// policy on every call, so a new entry of the user (after InvalidateUser
// or the change feed) decides at once: revoked, disabled, moved away; and
// the owners cache is never consulted for the state.
func TestAPIKeyFollowsItsUser(t *testing.T) {
	t.Parallel()
	const key = "ak_live_follow"
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		next func(r *apiKeysRig)
		want string
	}{
		{"revoked", func(r *apiKeysRig) {
			r.give(key, APIKeyRecord{UserID: "alice", Revoked: true}, 2, storedPolicy{Found: true})
		}, KeyRevoked},
		{"user disabled", func(r *apiKeysRig) {
			r.give(key, APIKeyRecord{UserID: "alice"}, 2, storedPolicy{Found: true, Disabled: true})
		}, KeyUserDisabled},
		{"key deleted", func(r *apiKeysRig) { r.users.set("alice", 2, storedPolicy{Found: true}) }, KeyInvalid},
		{"expired now", func(r *apiKeysRig) {
			r.give(key, APIKeyRecord{UserID: "alice", ExpiresAt: now}, 2, storedPolicy{Found: true})
		}, KeyExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newAPIKeysRig(t)
			r.give(key, APIKeyRecord{UserID: "alice", Name: "ci"}, 1, storedPolicy{Found: true})
			if _, err := r.a.Verify(ctx, key); err != nil {
				t.Fatal(err)
			}
			tc.next(r)
			if _, err := r.a.Verify(ctx, key); keyCode(err) != tc.want {
				t.Fatalf("after the user's entry changed: %v, want %s", err, tc.want)
			}
			if calls := r.src.calls(); len(calls) != 1 {
				t.Fatalf("source calls %v: the key's owner is read once", calls)
			}
		})
	}
}

func keyCode(err error) string {
	var ke *KeyError
	if errors.As(err, &ke) {
		return ke.Code
	}
	return ""
}

// TestAPIKeyUnavailable: a source, cache or invalidation failure is
// ErrUnavailable (not a refused key), never quoting the key; a cancelled
// caller gets its own error back.
func TestAPIKeyUnavailable(t *testing.T) {
	t.Parallel()
	const key = "ak_live_secret_value_42"
	down := errors.New("database down; key=" + KeyHash(key))
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		breakIt func(r *apiKeysRig)
		want    error
	}{
		{"key source down", func(r *apiKeysRig) { r.src.fail(down) }, ErrUnavailable},
		{"key cache failing", func(r *apiKeysRig) { r.keys.mu.Lock(); r.keys.err = shard.ErrChurn; r.keys.mu.Unlock() }, ErrUnavailable},
		{"cached record unreadable", func(r *apiKeysRig) {
			r.keys.mu.Lock()
			r.keys.entries[KeyHash(key)] = shard.Entry{Value: []byte("{"), Gen: 1}
			r.keys.mu.Unlock()
		}, ErrUnavailable},
		{"users cache failing", func(r *apiKeysRig) { r.users.err = shard.ErrSourceFailed }, ErrUnavailable},
		{"caller cancelled", func(r *apiKeysRig) { r.src.fail(context.Canceled) }, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newAPIKeysRig(t)
			r.give(key, APIKeyRecord{UserID: "alice"}, 1, storedPolicy{Found: true})
			tc.breakIt(r)
			info, err := r.a.Verify(ctx, key)
			if !errors.Is(err, tc.want) || keyCode(err) != "" || info.UserID != "" {
				t.Fatalf("Verify = %+v, %v; want %v", info, err, tc.want)
			}
			checkNoPlaintext(t, err, key)
		})
	}
}

// TestAPIKeyLoaderCachesUnknownKeys: the loader turns "not found" into a
// value cached for a few seconds, so made-up keys are read from the source
// once, and a key created since is found soon.
func TestAPIKeyLoaderCachesUnknownKeys(t *testing.T) {
	t.Parallel()
	r := newAPIKeysRig(t)
	for range 3 {
		if _, err := r.a.Verify(context.Background(), "made-up"); keyCode(err) != KeyInvalid {
			t.Fatalf("Verify: %v", err)
		}
	}
	if calls := r.src.calls(); len(calls) != 1 {
		t.Fatalf("source calls %v, want one", calls)
	}
	v, err := APIKeyLoader(r.src).Load(context.Background(), KeyHash("made-up"))
	var k keyOwner
	if err != nil || json.Unmarshal(v.Bytes, &k) != nil || k.Found || v.TTL != unknownKeyTTL {
		t.Fatalf("loader: %s (TTL %v), %v", v.Bytes, v.TTL, err)
	}
	if strings.Contains(string(v.Bytes), "made-up") {
		t.Fatalf("the loaded value quotes the key: %s", v.Bytes)
	}
}
