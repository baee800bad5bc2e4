package transport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/avion/authnode/transport/authpb"
)

const (
	// maxRequestID bounds a caller's request id that is reused.
	maxRequestID = 128
	// requestIDHeader carries the request id in and out of HTTP calls; its
	// lower-case form is the gRPC metadata key.
	requestIDHeader = "X-Request-Id"
	requestIDKey    = "x-request-id"
)

type requestIDContextKey struct{}

// WithRequestID returns ctx carrying the request id id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDContextKey{}, id)
}

// RequestID returns the request id ctx carries, or "". Mutating public
// calls and admin calls carry one, for their log lines.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDContextKey{}).(string)
	return id
}

// requestID returns the caller's id when it is sane (1 to maxRequestID
// printable ASCII characters), else a new random id of 16 hex characters.
func requestID(caller string) string {
	if saneRequestID(caller) {
		return caller
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (it crashes the program instead)
	return hex.EncodeToString(b[:])
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestID {
		return false
	}
	for i := range len(id) {
		if id[i] < 0x20 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// withHTTPRequestID gives r's context the caller's X-Request-Id (or a new
// one) and echoes it in the response.
func withHTTPRequestID(w http.ResponseWriter, r *http.Request) *http.Request {
	id := requestID(r.Header.Get(requestIDHeader))
	w.Header().Set(requestIDHeader, id)
	return r.WithContext(WithRequestID(r.Context(), id))
}

// grpcMutations are the public gRPC methods that change state: they get a
// request id.
var grpcMutations = map[string]bool{
	authpb.AuthService_RevokeTokens_FullMethodName:   true,
	authpb.AuthService_PutSession_FullMethodName:     true,
	authpb.AuthService_DeleteSession_FullMethodName:  true,
	authpb.AuthService_InvalidateUser_FullMethodName: true,
}

// RequestIDs is a unary server interceptor that gives each mutating public
// call the caller's x-request-id metadata (or a new id), echoed in the
// response header.
func RequestIDs(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !grpcMutations[info.FullMethod] {
		return handler(ctx, req)
	}
	var caller string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(requestIDKey); len(v) > 0 {
			caller = v[0]
		}
	}
	id := requestID(caller)
	_ = grpc.SetHeader(ctx, metadata.Pairs(requestIDKey, id))
	return handler(WithRequestID(ctx, id), req)
}
