package transport

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/avion/authnode/auth"
)

// Service is what the public APIs (gRPC avion.auth.v1.AuthService and HTTP
// /v1/...) serve; *node.Node implements it. Errors: auth.ErrUnavailable
// (nothing usable cached and the source did not answer: 503 /
// Unavailable), auth.ErrInvalidInput (400 / InvalidArgument), context
// errors (the caller gave up or the deadline passed). An invalid token, a
// deny or an unknown key is an answer, not an error.
type Service interface {
	// ValidateToken returns the token's claims, or an *auth.TokenError
	// saying why it is not valid.
	ValidateToken(ctx context.Context, token string) (auth.Claims, error)
	// RevokeTokens revokes every token of userID issued before before and
	// pushes the watermark to every member.
	RevokeTokens(ctx context.Context, userID string, before time.Time) (Revocation, error)
	// Authorize decides whether userID may do action on resource.
	Authorize(ctx context.Context, userID, resource, action string, conditions map[string]string) (bool, error)
	// VerifyAPIKey returns the key's owner and scopes, or an
	// *auth.KeyError saying why the key is not accepted.
	VerifyAPIKey(ctx context.Context, key string) (auth.APIKeyInfo, error)
	// GetSession returns userID's session; Found is false when there is none.
	GetSession(ctx context.Context, userID string) (auth.Session, error)
	// PutSession stores userID's session (the source first, then the cache).
	PutSession(ctx context.Context, userID string, data json.RawMessage, expiresAt time.Time) error
	// DeleteSession removes userID's session; removing none is no error.
	DeleteSession(ctx context.Context, userID string) error
	// InvalidateUser drops what every member caches about userID.
	InvalidateUser(ctx context.Context, userID string) (Acks, error)
}

// Acks says how many members acknowledged a cluster-wide change within its
// deadline, out of how many were asked.
type Acks struct {
	Acknowledged int `json:"acknowledged"`
	Members      int `json:"members"`
}

// Revocation is the result of RevokeTokens.
type Revocation struct {
	Acks
	// Watermark is the stored watermark: tokens issued before it are
	// revoked. It never moves back, so it may be later than asked for.
	Watermark time.Time `json:"watermark"`
}

// Admin is what the admin listener serves; *node.Node implements it.
type Admin interface {
	// Warmup loads the given users' policies (or, with none given, the
	// recent most recently active users) into the cluster cache and returns
	// how many were loaded.
	Warmup(ctx context.Context, userIDs []string, recent int) (int, error)
	// PreloadJWKS refreshes every issuer's JWKS now and returns the key
	// count per issuer.
	PreloadJWKS(ctx context.Context) (map[string]int, error)
	// DropUser is InvalidateUser for the admin API.
	DropUser(ctx context.Context, userID string) (Acks, error)
	// DropAll drops every cached entry of every group on every member.
	DropAll(ctx context.Context) (Acks, error)
	// ClusterInfo describes the cluster as this node sees it.
	ClusterInfo() ClusterInfo
}

// ClusterInfo is the admin view of the cluster.
type ClusterInfo struct {
	Node            string               `json:"node"`
	Members         []MemberInfo         `json:"members"`
	RingEpoch       uint64               `json:"ring_epoch"`
	RingFingerprint string               `json:"ring_fingerprint"`
	PartitionsOwned int                  `json:"partitions_owned"`
	Groups          map[string]GroupInfo `json:"groups"`
	CacheMode       string               `json:"cache_mode"`
	Redis           *RedisInfo           `json:"redis,omitempty"` // nil without Redis
}

// RedisInfo is the Redis fallback's state in ClusterInfo.
type RedisInfo struct {
	CircuitOpen    bool   `json:"circuit_open"`
	Hits           uint64 `json:"hits"`
	Misses         uint64 `json:"misses"`
	StaleSkipped   uint64 `json:"stale_skipped"`
	WriteDrops     uint64 `json:"write_drops"`
	Errors         uint64 `json:"errors"`
	DeletesPending int    `json:"deletes_pending"`
}

// MemberInfo is one member in ClusterInfo.
type MemberInfo struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Address  string `json:"address"`
	PeerAddr string `json:"peer_addr"`
	Zone     string `json:"zone,omitempty"`
}

// GroupInfo is one cache group in ClusterInfo.
type GroupInfo struct {
	Entries int64 `json:"entries"`
	Bytes   int64 `json:"bytes"`
}

// errStatus is how a Service error is reported.
type errStatus int

const (
	errInternal errStatus = iota
	errUnavailable
	errInvalid
	errCanceled
	errDeadline
)

// classify sorts a Service error into how it is reported.
func classify(err error) errStatus {
	switch {
	case errors.Is(err, auth.ErrInvalidInput):
		return errInvalid
	case errors.Is(err, auth.ErrUnavailable):
		return errUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return errDeadline
	case errors.Is(err, context.Canceled):
		return errCanceled
	}
	return errInternal
}

// invalidMessage is the message of an auth.ErrInvalidInput error: its text
// without the package prefix. Such errors describe the caller's input
// (which field, which limit) and never carry secrets.
func invalidMessage(err error) string {
	return strings.TrimPrefix(err.Error(), "auth: ")
}
