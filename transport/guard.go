package transport

import (
	"context"
	"errors"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Guard decides whether a caller of the public APIs may mutate state:
// store or delete a session, revoke tokens, invalidate a user.
//
// With Tokens configured, a mutation needs a bearer token that Tokens
// accepts, whatever Insecure says. With no tokens, mutations are refused
// unless Insecure is set, in which case anyone may mutate (development
// only). The zero Guard refuses every mutation.
type Guard struct {
	Tokens   Tokens
	Insecure bool
}

// Why Guard.Check refuses a mutation.
var (
	// ErrMutationsDisabled: the node has no API tokens and is not in
	// insecure mode (HTTP 403 "mutations_disabled", gRPC PermissionDenied).
	ErrMutationsDisabled = errors.New("transport: mutations are disabled: set --api-token-file to enable them")
	// ErrUnauthenticated: the bearer token is missing or not accepted
	// (HTTP 401 "unauthenticated" with WWW-Authenticate: Bearer, gRPC
	// Unauthenticated).
	ErrUnauthenticated = errors.New("transport: a valid bearer token is required")
)

// Messages of a refusal as callers see them: fixed, never the token.
const (
	msgMutationsDisabled = "mutations are disabled on this node: set --api-token-file to enable them"
	msgUnauthenticated   = "a valid bearer token is required"
)

// Check decides one mutation whose caller presented bearer ("" when it
// presented none). It returns nil when the mutation is allowed, else
// ErrMutationsDisabled or ErrUnauthenticated.
func (g Guard) Check(bearer string) error {
	switch {
	case !g.Tokens.Empty():
		if g.Tokens.Accepts(bearer) {
			return nil
		}
		return ErrUnauthenticated
	case g.Insecure:
		return nil
	}
	return ErrMutationsDisabled
}

// checkHTTP decides a mutation from r's Authorization header. When it
// refuses, it has written the response and returns false.
func (g Guard) checkHTTP(w http.ResponseWriter, r *http.Request) bool {
	bearer, _ := bearerToken(r.Header)
	switch err := g.Check(bearer); {
	case err == nil:
		return true
	case errors.Is(err, ErrMutationsDisabled):
		writeError(w, http.StatusForbidden, "mutations_disabled", msgMutationsDisabled)
	default:
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeError(w, http.StatusUnauthorized, "unauthenticated", msgUnauthenticated)
	}
	return false
}

// checkGRPC decides a mutation from the call's "authorization" metadata.
// It returns nil when allowed, else the status to return.
func (g Guard) checkGRPC(ctx context.Context) error {
	switch err := g.Check(grpcBearer(ctx)); {
	case err == nil:
		return nil
	case errors.Is(err, ErrMutationsDisabled):
		return status.Error(codes.PermissionDenied, msgMutationsDisabled)
	default:
		return status.Error(codes.Unauthenticated, msgUnauthenticated)
	}
}

// grpcBearer returns the token of the call's one "authorization: Bearer"
// metadata value, or "" when there is none or more than one.
func grpcBearer(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	values := md.Get("authorization")
	if len(values) != 1 {
		return ""
	}
	token, _ := bearerToken(http.Header{"Authorization": values})
	return token
}
