package transport

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/avion/authnode/auth"
	"github.com/avion/authnode/transport/authpb"
)

// idService is the fake service noting the request id (RequestID) of the
// context of each call it gets.
type idService struct {
	*fakeService
	mu  sync.Mutex
	ids map[string]string // method name: RequestID(ctx) of its last call
}

func newIDService() *idService {
	return &idService{fakeService: newFakeService(), ids: map[string]string{}}
}

func (s *idService) note(ctx context.Context, method string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids[method] = RequestID(ctx)
}

// seen returns the request id the last call of method saw, and whether
// method was called at all.
func (s *idService) seen(method string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.ids[method]
	return id, ok
}

func (s *idService) ValidateToken(ctx context.Context, token string) (auth.Claims, error) {
	s.note(ctx, "ValidateToken")
	return s.fakeService.ValidateToken(ctx, token)
}

func (s *idService) RevokeTokens(ctx context.Context, userID string, before time.Time) (Revocation, error) {
	s.note(ctx, "RevokeTokens")
	return s.fakeService.RevokeTokens(ctx, userID, before)
}

func (s *idService) Authorize(ctx context.Context, userID, resource, action string, conditions map[string]string) (bool, error) {
	s.note(ctx, "Authorize")
	return s.fakeService.Authorize(ctx, userID, resource, action, conditions)
}

func (s *idService) VerifyAPIKey(ctx context.Context, key string) (auth.APIKeyInfo, error) {
	s.note(ctx, "VerifyAPIKey")
	return s.fakeService.VerifyAPIKey(ctx, key)
}

func (s *idService) GetSession(ctx context.Context, userID string) (auth.Session, error) {
	s.note(ctx, "GetSession")
	return s.fakeService.GetSession(ctx, userID)
}

func (s *idService) PutSession(ctx context.Context, userID string, data json.RawMessage, expiresAt time.Time) error {
	s.note(ctx, "PutSession")
	return s.fakeService.PutSession(ctx, userID, data, expiresAt)
}

func (s *idService) DeleteSession(ctx context.Context, userID string) error {
	s.note(ctx, "DeleteSession")
	return s.fakeService.DeleteSession(ctx, userID)
}

func (s *idService) InvalidateUser(ctx context.Context, userID string) (Acks, error) {
	s.note(ctx, "InvalidateUser")
	return s.fakeService.InvalidateUser(ctx, userID)
}

var _ Service = (*idService)(nil)

// mutationMethods maps the names of mutationRoutes and mutationCalls to
// the Service method each calls.
var mutationMethods = map[string]string{
	"revoke":         "RevokeTokens",
	"put session":    "PutSession",
	"delete session": "DeleteSession",
	"invalidate":     "InvalidateUser",
}

// startIDHTTP serves the public HTTP API over a new idService with guard.
func startIDHTTP(t *testing.T, guard Guard) (*httptest.Server, *idService) {
	t.Helper()
	svc := newIDService()
	return serveHTTP(t, svc, guard), svc
}

// sendWithID is send with an X-Request-Id header of id (none when id is
// "").
func sendWithID(t *testing.T, srv *httptest.Server, method, path, body, authorization, id string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if id != "" {
		req.Header.Set("X-Request-Id", id)
	}
	return sendRequest(t, srv, req)
}

// onlyRequestID returns the single X-Request-Id value of h, failing when
// there is not exactly one.
func onlyRequestID(t *testing.T, h http.Header) string {
	t.Helper()
	v := h.Values("X-Request-Id")
	if len(v) != 1 {
		t.Fatalf("X-Request-Id values %q, want exactly one", v)
	}
	return v[0]
}

func TestRequestIDHTTPMutationReusesCallerID(t *testing.T) {
	for _, guard := range []struct {
		name  string
		guard Guard
		auth  string
	}{
		{"token", secureGuard, bearer},
		{"insecure", Guard{Insecure: true}, ""},
	} {
		for _, rt := range mutationRoutes {
			t.Run(guard.name+"/"+rt.name, func(t *testing.T) {
				srv, svc := startIDHTTP(t, guard.guard)
				r := sendWithID(t, srv, rt.method, rt.path, rt.body, guard.auth, "abc-123")
				if r.status < 200 || r.status > 299 {
					t.Fatalf("status %d body %s", r.status, r.body)
				}
				if got := onlyRequestID(t, r.header); got != "abc-123" {
					t.Fatalf("X-Request-Id %q, want abc-123", got)
				}
				if got, ok := svc.seen(mutationMethods[rt.name]); !ok || got != "abc-123" {
					t.Fatalf("service saw request id %q (called %v), want abc-123", got, ok)
				}
			})
		}
	}
}

func TestRequestIDHTTPMutationMakesID(t *testing.T) {
	for _, rt := range mutationRoutes {
		t.Run(rt.name, func(t *testing.T) {
			srv, svc := startIDHTTP(t, secureGuard)
			r := sendWithID(t, srv, rt.method, rt.path, rt.body, bearer, "")
			if r.status < 200 || r.status > 299 {
				t.Fatalf("status %d body %s", r.status, r.body)
			}
			got := onlyRequestID(t, r.header)
			if !adminHexID.MatchString(got) {
				t.Fatalf("X-Request-Id %q, want 16 hex characters", got)
			}
			if seen, ok := svc.seen(mutationMethods[rt.name]); !ok || seen != got {
				t.Fatalf("service saw request id %q (called %v), response has %q", seen, ok, got)
			}
		})
	}
}

// TestRequestIDHTTPInsaneHeaderReplaced sends headers Go's client lets
// through but that are no sane request id.
func TestRequestIDHTTPInsaneHeaderReplaced(t *testing.T) {
	for _, tc := range []struct{ name, header string }{
		{"too long", strings.Repeat("r", maxRequestID+1)},
		{"far too long", strings.Repeat("r", 4096)},
		{"tab inside", "abc\tdef"},
		{"non-ASCII", "réq-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, svc := startIDHTTP(t, secureGuard)
			r := sendWithID(t, srv, "POST", "/v1/tokens/revoke", `{"user_id":"u1"}`, bearer, tc.header)
			if r.status != http.StatusOK {
				t.Fatalf("status %d body %s", r.status, r.body)
			}
			got := onlyRequestID(t, r.header)
			if !adminHexID.MatchString(got) {
				t.Fatalf("X-Request-Id %q, want a new id of 16 hex characters", got)
			}
			if seen, _ := svc.seen("RevokeTokens"); seen != got {
				t.Fatalf("service saw request id %q, response has %q", seen, got)
			}
		})
	}
}

// TestRequestIDHTTPControlCharReplaced serves requests directly, so
// headers Go's client would refuse reach the handler.
func TestRequestIDHTTPControlCharReplaced(t *testing.T) {
	for _, tc := range []struct{ name, header string }{
		{"SOH", "abc\x01def"},
		{"NUL", "abc\x00"},
		{"DEL", "abc\x7f"},
		{"newline", "abc\ndef"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := newIDService()
			h := newPublicAPI(svc, Guard{Insecure: true}, func() time.Time { return testNow }).handler()
			req := httptest.NewRequest("POST", "/v1/users/u1/invalidate", nil)
			req.Header["X-Request-Id"] = []string{tc.header}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d body %s", w.Code, w.Body)
			}
			got := onlyRequestID(t, w.Header())
			if !adminHexID.MatchString(got) {
				t.Fatalf("X-Request-Id %q, want a new id of 16 hex characters", got)
			}
			if seen, _ := svc.seen("InvalidateUser"); seen != got {
				t.Fatalf("service saw request id %q, response has %q", seen, got)
			}
		})
	}
}

// TestRequestIDHTTPRefusedMutation: a mutation the guard refuses, or whose
// request is bad, or that the service fails, still answers with an id.
func TestRequestIDHTTPRefusedMutation(t *testing.T) {
	tests := []struct {
		name   string
		guard  Guard
		auth   string
		status int
	}{
		{"missing bearer", secureGuard, "", 401},
		{"wrong bearer", secureGuard, "Bearer not-the-token-xyz", 401},
		{"mutations disabled", Guard{}, bearer, 403},
	}
	for _, tt := range tests {
		for _, rt := range mutationRoutes {
			for _, caller := range []string{"", "abc-123"} {
				t.Run(tt.name+"/"+rt.name+"/"+caller, func(t *testing.T) {
					srv, svc := startIDHTTP(t, tt.guard)
					r := sendWithID(t, srv, rt.method, rt.path, rt.body, tt.auth, caller)
					if r.status != tt.status {
						t.Fatalf("status %d body %s, want %d", r.status, r.body, tt.status)
					}
					got := onlyRequestID(t, r.header)
					if caller != "" && got != caller {
						t.Fatalf("X-Request-Id %q, want %q", got, caller)
					}
					if caller == "" && !adminHexID.MatchString(got) {
						t.Fatalf("X-Request-Id %q, want 16 hex characters", got)
					}
					if _, ok := svc.seen(mutationMethods[rt.name]); ok {
						t.Fatal("refused mutation reached the service")
					}
				})
			}
		}
	}

	t.Run("bad input", func(t *testing.T) {
		srv, _ := startIDHTTP(t, secureGuard)
		r := sendWithID(t, srv, "PUT", "/v1/sessions/u1", `{"data":{}}`, bearer, "abc-123")
		if r.status != http.StatusBadRequest || onlyRequestID(t, r.header) != "abc-123" {
			t.Fatalf("status %d, X-Request-Id %q", r.status, r.header.Values("X-Request-Id"))
		}
	})
	t.Run("service error", func(t *testing.T) {
		srv, svc := startIDHTTP(t, secureGuard)
		svc.failWith(auth.ErrUnavailable)
		r := sendWithID(t, srv, "DELETE", "/v1/sessions/u1", "", bearer, "abc-123")
		if r.status != http.StatusServiceUnavailable || onlyRequestID(t, r.header) != "abc-123" {
			t.Fatalf("status %d, X-Request-Id %q", r.status, r.header.Values("X-Request-Id"))
		}
		if seen, _ := svc.seen("DeleteSession"); seen != "abc-123" {
			t.Fatalf("service saw request id %q", seen)
		}
	})
}

// TestRequestIDHTTPReadsHaveNone: the read-only hot path makes no id, even
// when the caller sends one.
func TestRequestIDHTTPReadsHaveNone(t *testing.T) {
	reads := []struct{ name, method, path, body, service string }{
		{"validate", "POST", "/v1/tokens/validate", `{"token":"` + goodToken + `"}`, "ValidateToken"},
		{"authorize", "POST", "/v1/authorize", `{"user_id":"u1","resource":"r","action":"read"}`, "Authorize"},
		{"apikey", "POST", "/v1/apikeys/verify", `{"api_key":"` + goodKey + `"}`, "VerifyAPIKey"},
		{"get session", "GET", "/v1/sessions/u1", "", "GetSession"},
	}
	for _, rd := range reads {
		for _, caller := range []string{"", "abc-123"} {
			t.Run(rd.name+"/"+caller, func(t *testing.T) {
				srv, svc := startIDHTTP(t, secureGuard)
				svc.putSession("u1", `{}`, testNow.Add(time.Hour))
				r := sendWithID(t, srv, rd.method, rd.path, rd.body, "", caller)
				if r.status != http.StatusOK {
					t.Fatalf("status %d body %s", r.status, r.body)
				}
				if v := r.header.Values("X-Request-Id"); len(v) != 0 {
					t.Fatalf("read answered X-Request-Id %q", v)
				}
				if seen, ok := svc.seen(rd.service); !ok || seen != "" {
					t.Fatalf("service saw request id %q (called %v), want none", seen, ok)
				}
			})
		}
	}
}

// headerRecorder is a client interceptor keeping the response header of
// the last call.
type headerRecorder struct {
	mu sync.Mutex
	md metadata.MD
}

func (h *headerRecorder) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	var md metadata.MD
	err := invoker(ctx, method, req, reply, cc, append(opts, grpc.Header(&md))...)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.md = md
	return err
}

// last returns the x-request-id values of the last call's response header.
func (h *headerRecorder) last() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.md.Get("x-request-id")
}

// startIDGRPC serves AuthService over a new idService with guard and the
// RequestIDs interceptor on a loopback listener, and returns a client
// whose calls' response headers hdr keeps.
func startIDGRPC(t *testing.T, guard Guard) (c authpb.AuthServiceClient, svc *idService, hdr *headerRecorder) {
	t.Helper()
	svc, hdr = newIDService(), &headerRecorder{}
	return serveGRPC(t, svc, guard, RequestIDs, hdr.intercept), svc, hdr
}

// withRequestIDMD returns withAuth(t, auth...) with x-request-id metadata
// of id (none when id is "").
func withRequestIDMD(t *testing.T, id string, auth ...string) context.Context {
	t.Helper()
	ctx := withAuth(t, auth...)
	if id != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "x-request-id", id)
	}
	return ctx
}

func TestRequestIDGRPCMutationReusesCallerID(t *testing.T) {
	c, svc, hdr := startIDGRPC(t, secureGuard)
	for name, call := range mutationCalls(c) {
		if err := call(withRequestIDMD(t, "abc-123", bearer)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := hdr.last(); len(got) != 1 || got[0] != "abc-123" {
			t.Fatalf("%s: x-request-id header %q, want [abc-123]", name, got)
		}
		if seen, ok := svc.seen(mutationMethods[name]); !ok || seen != "abc-123" {
			t.Fatalf("%s: service saw request id %q (called %v), want abc-123", name, seen, ok)
		}
	}
}

// TestRequestIDGRPCHeaderCallOption reads the id with grpc.Header on the
// call itself, as a client would.
func TestRequestIDGRPCHeaderCallOption(t *testing.T) {
	c, svc, _ := startIDGRPC(t, Guard{Insecure: true})
	var md metadata.MD
	_, err := c.PutSession(withRequestIDMD(t, "put-42"), &authpb.PutSessionRequest{UserId: "u1", DataJson: `{}`,
		Expiry: &authpb.PutSessionRequest_TtlSeconds{TtlSeconds: 60}}, grpc.Header(&md))
	if err != nil {
		t.Fatal(err)
	}
	if got := md.Get("x-request-id"); len(got) != 1 || got[0] != "put-42" {
		t.Fatalf("x-request-id header %q, want [put-42]", got)
	}
	if seen, _ := svc.seen("PutSession"); seen != "put-42" {
		t.Fatalf("service saw request id %q", seen)
	}
}

func TestRequestIDGRPCMutationMakesID(t *testing.T) {
	for _, tc := range []struct{ name, caller string }{
		{"none", ""},
		{"too long", strings.Repeat("r", maxRequestID+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, svc, hdr := startIDGRPC(t, secureGuard)
			for name, call := range mutationCalls(c) {
				if err := call(withRequestIDMD(t, tc.caller, bearer)); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				got := hdr.last()
				if len(got) != 1 || !adminHexID.MatchString(got[0]) {
					t.Fatalf("%s: x-request-id header %q, want one id of 16 hex characters", name, got)
				}
				if seen, _ := svc.seen(mutationMethods[name]); seen != got[0] {
					t.Fatalf("%s: service saw request id %q, header has %q", name, seen, got[0])
				}
			}
		})
	}
}

// TestRequestIDGRPCRefusedMutation: a call the guard refuses still gets
// its id back.
func TestRequestIDGRPCRefusedMutation(t *testing.T) {
	c, svc, hdr := startIDGRPC(t, secureGuard)
	for name, call := range mutationCalls(c) {
		err := call(withRequestIDMD(t, "abc-123"))
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("%s: %v, want Unauthenticated", name, err)
		}
		if got := hdr.last(); len(got) != 1 || got[0] != "abc-123" {
			t.Fatalf("%s: x-request-id header %q, want [abc-123]", name, got)
		}
	}
	if calls, _ := svc.lastCall(); len(calls) != 0 {
		t.Fatalf("refused mutations reached the service: %v", calls)
	}
}

// TestRequestIDGRPCReadsHaveNone: non-mutating calls get no id, even when
// the caller sends one.
func TestRequestIDGRPCReadsHaveNone(t *testing.T) {
	c, svc, _ := startIDGRPC(t, secureGuard)
	svc.putSession("u1", `{}`, time.Now().Add(time.Hour))
	reads := []struct {
		name, service string
		call          func(context.Context, grpc.CallOption) error
	}{
		{"validate", "ValidateToken", func(ctx context.Context, o grpc.CallOption) error {
			_, err := c.ValidateToken(ctx, &authpb.ValidateTokenRequest{Token: goodToken}, o)
			return err
		}},
		{"authorize", "Authorize", func(ctx context.Context, o grpc.CallOption) error {
			_, err := c.Authorize(ctx, &authpb.AuthorizeRequest{UserId: "u1", Resource: "r", Action: "read"}, o)
			return err
		}},
		{"apikey", "VerifyAPIKey", func(ctx context.Context, o grpc.CallOption) error {
			_, err := c.VerifyAPIKey(ctx, &authpb.VerifyAPIKeyRequest{ApiKey: goodKey}, o)
			return err
		}},
		{"get session", "GetSession", func(ctx context.Context, o grpc.CallOption) error {
			_, err := c.GetSession(ctx, &authpb.GetSessionRequest{UserId: "u1"}, o)
			return err
		}},
	}
	for _, rd := range reads {
		for _, caller := range []string{"", "abc-123"} {
			var md metadata.MD
			if err := rd.call(withRequestIDMD(t, caller, bearer), grpc.Header(&md)); err != nil {
				t.Fatalf("%s %q: %v", rd.name, caller, err)
			}
			if got := md.Get("x-request-id"); len(got) != 0 {
				t.Fatalf("%s %q: x-request-id header %q, want none", rd.name, caller, got)
			}
			if seen, ok := svc.seen(rd.service); !ok || seen != "" {
				t.Fatalf("%s %q: service saw request id %q (called %v), want none", rd.name, caller, seen, ok)
			}
		}
	}
}

// TestRequestIDsInterceptor calls the interceptor directly: the first of
// several x-request-id values is used, and a call without a server stream
// (grpc.SetHeader fails) still gets its id.
func TestRequestIDsInterceptor(t *testing.T) {
	var got string
	handler := func(ctx context.Context, _ any) (any, error) {
		got = RequestID(ctx)
		return "ok", nil
	}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("x-request-id", "first", "x-request-id", "second"))
	for _, tc := range []struct{ method, want string }{
		{authpb.AuthService_RevokeTokens_FullMethodName, "first"},
		{authpb.AuthService_PutSession_FullMethodName, "first"},
		{authpb.AuthService_DeleteSession_FullMethodName, "first"},
		{authpb.AuthService_InvalidateUser_FullMethodName, "first"},
		{authpb.AuthService_ValidateToken_FullMethodName, ""},
		{authpb.AuthService_Authorize_FullMethodName, ""},
		{authpb.AuthService_VerifyAPIKey_FullMethodName, ""},
		{authpb.AuthService_GetSession_FullMethodName, ""},
		{"/grpc.health.v1.Health/Check", ""},
	} {
		got = "unset"
		resp, err := RequestIDs(ctx, nil, &grpc.UnaryServerInfo{FullMethod: tc.method}, handler)
		if err != nil || resp != "ok" {
			t.Fatalf("%s: %v %v", tc.method, resp, err)
		}
		if got != tc.want {
			t.Fatalf("%s: handler saw request id %q, want %q", tc.method, got, tc.want)
		}
	}

	got = "unset"
	if _, err := RequestIDs(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: authpb.AuthService_InvalidateUser_FullMethodName}, handler); err != nil {
		t.Fatal(err)
	}
	if !adminHexID.MatchString(got) {
		t.Fatalf("without metadata the handler saw %q, want 16 hex characters", got)
	}
}

func TestRequestIDSanity(t *testing.T) {
	longest := strings.Repeat("r", maxRequestID)
	printable := make([]byte, 0, 0x7f-0x20)
	for c := byte(0x20); c <= 0x7e; c++ {
		printable = append(printable, c)
	}
	tests := []struct {
		name, id string
		sane     bool
	}{
		{"short", "abc-123", true},
		{"one char", "x", true},
		{"128 printable", longest, true},
		{"all printable ASCII", string(printable), true},
		{"space and tilde", " ~", true},
		{"empty", "", false},
		{"129", longest + "r", false},
		{"control char", "abc\x01def", false},
		{"NUL", "\x00", false},
		{"tab", "a\tb", false},
		{"newline", "a\nb", false},
		{"DEL", "abc\x7f", false},
		{"non-ASCII", "réq", false},
		{"invalid UTF-8", "\xff", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := saneRequestID(tt.id); got != tt.sane {
				t.Fatalf("saneRequestID(%q) = %v, want %v", tt.id, got, tt.sane)
			}
			got := requestID(tt.id)
			if tt.sane && got != tt.id {
				t.Fatalf("requestID(%q) = %q, want it kept", tt.id, got)
			}
			if !tt.sane && !adminHexID.MatchString(got) {
				t.Fatalf("requestID(%q) = %q, want a new id of 16 hex characters", tt.id, got)
			}
		})
	}
}

func TestRequestIDFreshIDsDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := requestID("")
		if !adminHexID.MatchString(id) {
			t.Fatalf("new id %q, want 16 hex characters", id)
		}
		if seen[id] {
			t.Fatalf("new id %q repeated", id)
		}
		seen[id] = true
	}
}

func TestRequestIDContext(t *testing.T) {
	if id := RequestID(context.Background()); id != "" {
		t.Fatalf("background context has request id %q", id)
	}
	ctx := WithRequestID(context.Background(), "abc-123")
	if id := RequestID(ctx); id != "abc-123" {
		t.Fatalf("RequestID = %q", id)
	}
	if id := RequestID(WithRequestID(ctx, "second")); id != "second" {
		t.Fatalf("inner RequestID = %q", id)
	}
}
