package transport

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/avion/authnode/auth"
)

// Values the fake service recognises.
const (
	goodToken    = "good.jwt.token"
	expiredToken = "expired.jwt.token"
	goodKey      = "ak_good_0123456789"
	revokedKey   = "ak_revoked_0123456789"
	apiToken     = "s3cret-api-token"
)

// fakeExpiry is the expiry the fake gives tokens and keys.
var fakeExpiry = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeService is a Service in memory. With err set, every method fails with
// it. Tokens: goodToken is valid, expiredToken is expired, any other token
// is valid too (so arbitrary input succeeds). Keys: goodKey is valid,
// revokedKey revoked, any other invalid. Authorize allows the action
// "read" only.
type fakeService struct {
	mu       sync.Mutex
	err      error
	sessions map[string]auth.Session
	calls    []string // method names, in order
	last     fakeCall
}

// fakeCall is the arguments of the last call.
type fakeCall struct {
	token, key, userID, resource, action string
	conditions                           map[string]string
	before, expiresAt                    time.Time
	data                                 json.RawMessage
}

func newFakeService() *fakeService {
	return &fakeService{sessions: map[string]auth.Session{}}
}

// failWith makes every later call fail with err.
func (f *fakeService) failWith(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// record notes a call and returns the configured error.
func (f *fakeService) record(method string, c fakeCall) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, method)
	f.last = c
	return f.err
}

// lastCall returns the method names called so far and the last arguments.
func (f *fakeService) lastCall() ([]string, fakeCall) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...), f.last
}

func (f *fakeService) ValidateToken(_ context.Context, token string) (auth.Claims, error) {
	if err := f.record("ValidateToken", fakeCall{token: token}); err != nil {
		return auth.Claims{}, err
	}
	if token == expiredToken {
		return auth.Claims{}, &auth.TokenError{Code: auth.CodeExpired, Reason: "token expired"}
	}
	return auth.Claims{
		UserID:    "u1",
		Scopes:    []string{"read", "write"},
		ExpiresAt: fakeExpiry,
		TokenType: "access",
		Metadata:  map[string]any{"tenant": "t1"},
	}, nil
}

func (f *fakeService) RevokeTokens(_ context.Context, userID string, before time.Time) (Revocation, error) {
	if err := f.record("RevokeTokens", fakeCall{userID: userID, before: before}); err != nil {
		return Revocation{}, err
	}
	if before.IsZero() {
		before = fakeExpiry
	}
	return Revocation{Acks: Acks{Acknowledged: 3, Members: 3}, Watermark: before}, nil
}

func (f *fakeService) Authorize(_ context.Context, userID, resource, action string, conditions map[string]string) (bool, error) {
	c := fakeCall{userID: userID, resource: resource, action: action, conditions: conditions}
	if err := f.record("Authorize", c); err != nil {
		return false, err
	}
	return action == "read", nil
}

func (f *fakeService) VerifyAPIKey(_ context.Context, key string) (auth.APIKeyInfo, error) {
	if err := f.record("VerifyAPIKey", fakeCall{key: key}); err != nil {
		return auth.APIKeyInfo{}, err
	}
	switch key {
	case goodKey:
		return auth.APIKeyInfo{UserID: "u1", Name: "ci", Scopes: []string{"deploy"}, ExpiresAt: fakeExpiry}, nil
	case revokedKey:
		return auth.APIKeyInfo{}, &auth.KeyError{Code: auth.KeyRevoked}
	}
	return auth.APIKeyInfo{}, &auth.KeyError{Code: auth.KeyInvalid}
}

func (f *fakeService) GetSession(_ context.Context, userID string) (auth.Session, error) {
	if err := f.record("GetSession", fakeCall{userID: userID}); err != nil {
		return auth.Session{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sessions[userID], nil
}

func (f *fakeService) PutSession(_ context.Context, userID string, data json.RawMessage, expiresAt time.Time) error {
	if err := f.record("PutSession", fakeCall{userID: userID, data: data, expiresAt: expiresAt}); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions[userID] = auth.Session{Found: true, UserID: userID, Data: data, ExpiresAt: expiresAt}
	return nil
}

func (f *fakeService) DeleteSession(_ context.Context, userID string) error {
	if err := f.record("DeleteSession", fakeCall{userID: userID}); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sessions, userID)
	return nil
}

func (f *fakeService) InvalidateUser(_ context.Context, userID string) (Acks, error) {
	if err := f.record("InvalidateUser", fakeCall{userID: userID}); err != nil {
		return Acks{}, err
	}
	return Acks{Acknowledged: 2, Members: 3}, nil
}

// putSession stores a session directly.
func (f *fakeService) putSession(userID, data string, expiresAt time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions[userID] = auth.Session{Found: true, UserID: userID, Data: json.RawMessage(data), ExpiresAt: expiresAt}
}

var _ Service = (*fakeService)(nil)
