package auth

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func jwkJSON(kid string, pub *rsa.PublicKey) string {
	b64 := base64.RawURLEncoding.EncodeToString
	return fmt.Sprintf(`{"kty":"RSA","alg":"RS256","kid":%q,"n":%q,"e":%q}`, kid, b64(pub.N.Bytes()), b64(big.NewInt(int64(pub.E)).Bytes()))
}

// jwksServer serves a JWKS document the test can change, and counts fetches.
type jwksServer struct {
	mu      sync.Mutex
	doc     string
	status  int
	header  string
	fetches atomic.Int64
	*httptest.Server
}

func newJWKSServer(t *testing.T, doc string) *jwksServer {
	s := &jwksServer{doc: doc, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.header != "" {
			w.Header().Set("Cache-Control", s.header)
		}
		w.WriteHeader(s.status)
		_, _ = w.Write([]byte(s.doc))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(doc string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc, s.status = doc, status
}

func jwksValidator(t *testing.T, j *JWKS) *Validator {
	t.Helper()
	v, err := NewValidator([]Issuer{{Issuer: "https://issuer.test", Audiences: []string{"api"}, JWKS: j}}, 0, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func newTestJWKS(t *testing.T, cfg JWKSConfig) *JWKS {
	t.Helper()
	j, err := NewJWKS(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	if err := j.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return j
}

// TestKeyRotation: a new kid is accepted after the refresh it triggers; the
// removed kid is reported (to purge cached validations) and rejected.
func TestKeyRotation(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t, `{"keys":[`+jwkJSON("old", &k.rsa.PublicKey)+`]}`)
	var removed []string
	j := newTestJWKS(t, JWKSConfig{URL: srv.URL, Cooldown: time.Nanosecond, OnRemoved: func(kids []string) { removed = kids }})
	v := jwksValidator(t, j)
	ctx := context.Background()
	if _, err := v.Validate(ctx, sign(t, jwt.SigningMethodRS256, "old", k.rsa, baseClaims(), nil)); err != nil {
		t.Fatal(err)
	}
	srv.set(`{"keys":[`+jwkJSON("new", &k.other.PublicKey)+`]}`, http.StatusOK)
	if _, err := v.Validate(ctx, sign(t, jwt.SigningMethodRS256, "new", k.other, baseClaims(), nil)); err != nil {
		t.Fatalf("a token with the rotated-in kid: %v", err)
	}
	if len(removed) != 1 || removed[0] != "old" {
		t.Fatalf("removed kids reported: %v", removed)
	}
	if _, err := v.Validate(ctx, sign(t, jwt.SigningMethodRS256, "old", k.rsa, baseClaims(), nil)); ErrorCode(err) != CodeUnknownKid {
		t.Fatalf("a token with the rotated-out kid: %v", err)
	}
}

// TestUnknownKidFlood: many tokens with made-up kids cause at most one
// fetch per cooldown, and none waits long.
func TestUnknownKidFlood(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t, `{"keys":[`+jwkJSON("a", &k.rsa.PublicKey)+`]}`)
	j := newTestJWKS(t, JWKSConfig{URL: srv.URL, Cooldown: time.Hour})
	v := jwksValidator(t, j)
	before := srv.fetches.Load()
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			tok := sign(t, jwt.SigningMethodRS256, fmt.Sprintf("made-up-%d", i), k.rsa, baseClaims(), nil)
			if _, err := v.Validate(context.Background(), tok); ErrorCode(err) != CodeUnknownKid {
				t.Errorf("made-up kid: %v", err)
			}
		})
	}
	wg.Wait()
	if n := srv.fetches.Load() - before; n > 1 {
		t.Fatalf("%d fetches for a flood of unknown kids, want at most 1 per cooldown", n)
	}
}

func TestFailedFetchKeepsLastGoodSet(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t, `{"keys":[`+jwkJSON("a", &k.rsa.PublicKey)+`,{"kty":"RSA","kid":"broken","n":"!!","e":"AQAB"}]}`)
	j := newTestJWKS(t, JWKSConfig{URL: srv.URL})
	if st := j.Stats(); st.Skipped != 1 || len(j.Keys()) != 1 {
		t.Fatalf("keys %d, skipped %d", len(j.Keys()), st.Skipped)
	}
	for _, bad := range []struct {
		doc    string
		status int
	}{{"oops", http.StatusInternalServerError}, {"not json", http.StatusOK}, {strings.Repeat("x", 2<<20), http.StatusOK}} {
		srv.set(bad.doc, bad.status)
		if err := j.Refresh(context.Background()); err == nil {
			t.Fatalf("a bad fetch (%d) succeeded", bad.status)
		}
		if len(j.Keys()) != 1 {
			t.Fatal("a failed fetch dropped the last good set")
		}
	}
}

func TestCacheControlWithinBounds(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t, `{"keys":[`+jwkJSON("a", &k.rsa.PublicKey)+`]}`)
	clock := now
	for header, want := range map[string]time.Duration{
		"max-age=5":             time.Minute, // raised to the minimum
		"public, max-age=600":   10 * time.Minute,
		"max-age=86400":         time.Hour, // capped at the maximum
		"no-store":              5 * time.Minute,
		"max-age=-1, max-age=x": 5 * time.Minute,
	} {
		srv.mu.Lock()
		srv.header = header
		srv.mu.Unlock()
		j := newTestJWKS(t, JWKSConfig{URL: srv.URL, Now: func() time.Time { return clock }})
		if got := time.Unix(0, j.next.Load()).Sub(clock); got != want {
			t.Errorf("Cache-Control %q: next refresh in %v, want %v", header, got, want)
		}
	}
}

func TestJWKSFromFile(t *testing.T) {
	k := testKeys()
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, []byte(`{"keys":[`+jwkJSON("f", &k.rsa.PublicKey)+`]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	j := newTestJWKS(t, JWKSConfig{File: path})
	if _, err := jwksValidator(t, j).Validate(context.Background(), sign(t, jwt.SigningMethodRS256, "f", k.rsa, baseClaims(), nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := NewJWKS(JWKSConfig{}); err == nil {
		t.Fatal("a JWKS without a URL or file was accepted")
	}
	if _, err := NewJWKS(JWKSConfig{URL: "http://x", File: path}); err == nil {
		t.Fatal("a JWKS with both a URL and a file was accepted")
	}
}

// TestRunRefreshesAndStops: Run refreshes when due and returns when its
// context ends.
func TestRunRefreshesAndStops(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t, `{"keys":[`+jwkJSON("a", &k.rsa.PublicKey)+`]}`)
	j, err := NewJWKS(JWKSConfig{URL: srv.URL, Interval: 10 * time.Millisecond, MinInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		j.Run(ctx)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for srv.fetches.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not refresh periodically")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
