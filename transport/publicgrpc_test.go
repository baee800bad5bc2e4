package transport

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/avion/authnode/transport/authpb"
)

// startGRPC serves AuthService over a new fake service with guard on a
// loopback listener and returns a client for it.
func startGRPC(t *testing.T, guard Guard) (authpb.AuthServiceClient, *fakeService) {
	t.Helper()
	svc := newFakeService()
	return serveGRPC(t, svc, guard, nil, nil), svc
}

// serveGRPC serves the public gRPC API over svc on 127.0.0.1, with the
// server interceptor in (when not nil), and returns a client whose calls
// pass through out (when not nil).
func serveGRPC(t *testing.T, svc Service, guard Guard, in grpc.UnaryServerInterceptor, out grpc.UnaryClientInterceptor) authpb.AuthServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var sopts []grpc.ServerOption
	if in != nil {
		sopts = append(sopts, grpc.ChainUnaryInterceptor(in))
	}
	s := grpc.NewServer(sopts...)
	RegisterAuthService(s, svc, guard)
	go func() { _ = s.Serve(lis) }()
	copts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if out != nil {
		copts = append(copts, grpc.WithUnaryInterceptor(out))
	}
	conn, err := grpc.NewClient(lis.Addr().String(), copts...)
	if err != nil {
		s.Stop()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		s.Stop()
	})
	return authpb.NewAuthServiceClient(conn)
}

// withAuth returns a context with the given authorization metadata values.
func withAuth(t *testing.T, values ...string) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	for _, v := range values {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", v)
	}
	return ctx
}

// wantCode fails unless err is a status with code.
func wantCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	if got := status.Code(err); got != code {
		t.Fatalf("code %v (%v), want %v", got, err, code)
	}
}

func TestPublicGRPCValidateToken(t *testing.T) {
	c, svc := startGRPC(t, secureGuard)
	resp, err := c.ValidateToken(withAuth(t), &authpb.ValidateTokenRequest{Token: goodToken})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.GetValid() || resp.GetUserId() != "u1" || strings.Join(resp.GetScopes(), ",") != "read,write" ||
		!resp.GetExpiresAt().AsTime().Equal(fakeExpiry) || resp.GetTokenType() != "access" ||
		resp.GetMetadataJson() != `{"tenant":"t1"}` || resp.GetError() != nil {
		t.Fatalf("valid token: %v", resp)
	}

	resp, err = c.ValidateToken(withAuth(t), &authpb.ValidateTokenRequest{Token: expiredToken})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetValid() || resp.GetError().GetCode() != "expired" || resp.GetError().GetMessage() == "" || resp.GetUserId() != "" {
		t.Fatalf("expired token: %v", resp)
	}

	resp, err = c.ValidateToken(withAuth(t, "Bearer "+goodToken), &authpb.ValidateTokenRequest{})
	if err != nil || !resp.GetValid() {
		t.Fatalf("token from metadata: %v %v", resp, err)
	}
	if _, call := svc.lastCall(); call.token != goodToken {
		t.Fatalf("validated %q", call.token)
	}

	_, err = c.ValidateToken(withAuth(t), &authpb.ValidateTokenRequest{})
	wantCode(t, err, codes.InvalidArgument)
}

func TestPublicGRPCAnswers(t *testing.T) {
	c, svc := startGRPC(t, secureGuard)
	ctx := withAuth(t, bearer)

	allow, err := c.Authorize(ctx, &authpb.AuthorizeRequest{UserId: "u1", Resource: "doc", Action: "read", Conditions: map[string]string{"ip": "1.2.3.4"}})
	if err != nil || !allow.GetAllowed() || allow.GetUserId() != "u1" || allow.GetResource() != "doc" || allow.GetAction() != "read" {
		t.Fatalf("allow: %v %v", allow, err)
	}
	if _, call := svc.lastCall(); call.conditions["ip"] != "1.2.3.4" {
		t.Fatalf("conditions %v", call.conditions)
	}
	deny, err := c.Authorize(ctx, &authpb.AuthorizeRequest{UserId: "u1", Resource: "doc", Action: "delete"})
	if err != nil || deny.GetAllowed() {
		t.Fatalf("deny: %v %v", deny, err)
	}

	key, err := c.VerifyAPIKey(ctx, &authpb.VerifyAPIKeyRequest{ApiKey: goodKey})
	if err != nil || !key.GetValid() || key.GetUserId() != "u1" || key.GetName() != "ci" || key.GetScopes()[0] != "deploy" ||
		!key.GetExpiresAt().AsTime().Equal(fakeExpiry) {
		t.Fatalf("good key: %v %v", key, err)
	}
	key, err = c.VerifyAPIKey(ctx, &authpb.VerifyAPIKeyRequest{ApiKey: revokedKey})
	if err != nil || key.GetValid() || key.GetError().GetCode() != "revoked" {
		t.Fatalf("revoked key: %v %v", key, err)
	}

	before := time.Now().Add(-time.Hour).Truncate(time.Second)
	rev, err := c.RevokeTokens(ctx, &authpb.RevokeTokensRequest{UserId: "u1", Before: timestamppb.New(before)})
	if err != nil || rev.GetAcknowledged() != 3 || rev.GetMembers() != 3 || !rev.GetWatermark().AsTime().Equal(before) {
		t.Fatalf("revoke: %v %v", rev, err)
	}
	if _, err := c.RevokeTokens(ctx, &authpb.RevokeTokensRequest{UserId: "u1"}); err != nil {
		t.Fatal(err)
	}
	if _, call := svc.lastCall(); !call.before.IsZero() {
		t.Fatalf("revoke without before passed %v", call.before)
	}

	inv, err := c.InvalidateUser(ctx, &authpb.InvalidateUserRequest{UserId: "u1"})
	if err != nil || inv.GetAcknowledged() != 2 || inv.GetMembers() != 3 {
		t.Fatalf("invalidate: %v %v", inv, err)
	}
}

func TestPublicGRPCSessions(t *testing.T) {
	c, _ := startGRPC(t, secureGuard)
	ctx := withAuth(t, bearer)

	_, err := c.GetSession(ctx, &authpb.GetSessionRequest{UserId: "u1"})
	wantCode(t, err, codes.NotFound)

	put, err := c.PutSession(ctx, &authpb.PutSessionRequest{
		UserId: "u1", DataJson: `{"cart": [1, 2]}`, Expiry: &authpb.PutSessionRequest_TtlSeconds{TtlSeconds: 3600},
	})
	if err != nil || put.GetUserId() != "u1" || time.Until(put.GetExpiresAt().AsTime()) < 59*time.Minute {
		t.Fatalf("put: %v %v", put, err)
	}
	got, err := c.GetSession(ctx, &authpb.GetSessionRequest{UserId: "u1"})
	if err != nil || got.GetDataJson() != `{"cart":[1,2]}` || !got.GetExpiresAt().AsTime().Equal(put.GetExpiresAt().AsTime()) {
		t.Fatalf("get: %v %v", got, err)
	}

	at := time.Now().Add(2 * time.Hour).Truncate(time.Second)
	put, err = c.PutSession(ctx, &authpb.PutSessionRequest{
		UserId: "u1", DataJson: `{}`, Expiry: &authpb.PutSessionRequest_ExpiresAt{ExpiresAt: timestamppb.New(at)},
	})
	if err != nil || !put.GetExpiresAt().AsTime().Equal(at) {
		t.Fatalf("put expires_at: %v %v", put, err)
	}

	if _, err := c.DeleteSession(ctx, &authpb.DeleteSessionRequest{UserId: "u1"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetSession(ctx, &authpb.GetSessionRequest{UserId: "u1"})
	wantCode(t, err, codes.NotFound)
	if _, err := c.DeleteSession(ctx, &authpb.DeleteSessionRequest{UserId: "u1"}); err != nil {
		t.Fatalf("deleting no session: %v", err)
	}
}

func TestPublicGRPCBadInput(t *testing.T) {
	c, svc := startGRPC(t, secureGuard)
	ctx := withAuth(t, bearer)
	ttl := func(s int64) *authpb.PutSessionRequest_TtlSeconds {
		return &authpb.PutSessionRequest_TtlSeconds{TtlSeconds: s}
	}
	at := func(t time.Time) *authpb.PutSessionRequest_ExpiresAt {
		return &authpb.PutSessionRequest_ExpiresAt{ExpiresAt: timestamppb.New(t)}
	}
	tests := []struct {
		name string
		call func() error
	}{
		{"validate empty", func() error { _, err := c.ValidateToken(withAuth(t), &authpb.ValidateTokenRequest{}); return err }},
		{"validate empty bearer", func() error {
			_, err := c.ValidateToken(withAuth(t, "Bearer "), &authpb.ValidateTokenRequest{})
			return err
		}},
		{"revoke no user", func() error { _, err := c.RevokeTokens(ctx, &authpb.RevokeTokensRequest{}); return err }},
		{"revoke future", func() error {
			_, err := c.RevokeTokens(ctx, &authpb.RevokeTokensRequest{UserId: "u", Before: timestamppb.New(time.Now().Add(time.Hour))})
			return err
		}},
		{"revoke bad timestamp", func() error {
			_, err := c.RevokeTokens(ctx, &authpb.RevokeTokensRequest{UserId: "u", Before: &timestamppb.Timestamp{Nanos: -1}})
			return err
		}},
		{"authorize no action", func() error {
			_, err := c.Authorize(ctx, &authpb.AuthorizeRequest{UserId: "u", Resource: "r"})
			return err
		}},
		{"authorize no resource", func() error {
			_, err := c.Authorize(ctx, &authpb.AuthorizeRequest{UserId: "u", Action: "a"})
			return err
		}},
		{"authorize no user", func() error {
			_, err := c.Authorize(ctx, &authpb.AuthorizeRequest{Resource: "r", Action: "a"})
			return err
		}},
		{"apikey empty", func() error { _, err := c.VerifyAPIKey(ctx, &authpb.VerifyAPIKeyRequest{}); return err }},
		{"get session no user", func() error { _, err := c.GetSession(ctx, &authpb.GetSessionRequest{}); return err }},
		{"delete session no user", func() error { _, err := c.DeleteSession(ctx, &authpb.DeleteSessionRequest{}); return err }},
		{"invalidate no user", func() error { _, err := c.InvalidateUser(ctx, &authpb.InvalidateUserRequest{}); return err }},
	}
	puts := []struct {
		name string
		req  *authpb.PutSessionRequest
	}{
		{"no user", &authpb.PutSessionRequest{DataJson: `{}`, Expiry: ttl(60)}},
		{"no data", &authpb.PutSessionRequest{UserId: "u", Expiry: ttl(60)}},
		{"data not JSON", &authpb.PutSessionRequest{UserId: "u", DataJson: `{"a":`, Expiry: ttl(60)}},
		{"data an array", &authpb.PutSessionRequest{UserId: "u", DataJson: `[1]`, Expiry: ttl(60)}},
		{"data trailing", &authpb.PutSessionRequest{UserId: "u", DataJson: `{} {}`, Expiry: ttl(60)}},
		{"data too large", &authpb.PutSessionRequest{UserId: "u", DataJson: `{"a":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, Expiry: ttl(60)}},
		{"no expiry", &authpb.PutSessionRequest{UserId: "u", DataJson: `{}`}},
		{"ttl zero", &authpb.PutSessionRequest{UserId: "u", DataJson: `{}`, Expiry: ttl(0)}},
		{"ttl negative", &authpb.PutSessionRequest{UserId: "u", DataJson: `{}`, Expiry: ttl(-1)}},
		{"ttl huge", &authpb.PutSessionRequest{UserId: "u", DataJson: `{}`, Expiry: ttl(1 << 62)}},
		{"expiry past", &authpb.PutSessionRequest{UserId: "u", DataJson: `{}`, Expiry: at(time.Now().Add(-time.Minute))}},
		{"expiry too far", &authpb.PutSessionRequest{UserId: "u", DataJson: `{}`, Expiry: at(time.Now().Add(maxSessionTTL + time.Hour))}},
		{"expiry nil", &authpb.PutSessionRequest{UserId: "u", DataJson: `{}`, Expiry: &authpb.PutSessionRequest_ExpiresAt{}}},
		{"expiry invalid", &authpb.PutSessionRequest{UserId: "u", DataJson: `{}`,
			Expiry: &authpb.PutSessionRequest_ExpiresAt{ExpiresAt: &timestamppb.Timestamp{Seconds: -1 << 62}}}},
	}
	for _, p := range puts {
		tests = append(tests, struct {
			name string
			call func() error
		}{"put " + p.name, func() error { _, err := c.PutSession(ctx, p.req); return err }})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			wantCode(t, err, codes.InvalidArgument)
			if status.Convert(err).Message() == "" {
				t.Fatal("no message")
			}
		})
	}
	if calls, _ := svc.lastCall(); len(calls) != 0 {
		t.Fatalf("bad input reached the service: %v", calls)
	}
}

// mutationCalls makes each mutation with a valid request.
func mutationCalls(c authpb.AuthServiceClient) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"revoke": func(ctx context.Context) error {
			_, err := c.RevokeTokens(ctx, &authpb.RevokeTokensRequest{UserId: "u1"})
			return err
		},
		"put session": func(ctx context.Context) error {
			_, err := c.PutSession(ctx, &authpb.PutSessionRequest{UserId: "u1", DataJson: `{}`,
				Expiry: &authpb.PutSessionRequest_TtlSeconds{TtlSeconds: 60}})
			return err
		},
		"delete session": func(ctx context.Context) error {
			_, err := c.DeleteSession(ctx, &authpb.DeleteSessionRequest{UserId: "u1"})
			return err
		},
		"invalidate": func(ctx context.Context) error {
			_, err := c.InvalidateUser(ctx, &authpb.InvalidateUserRequest{UserId: "u1"})
			return err
		},
	}
}

func TestPublicGRPCGuard(t *testing.T) {
	tests := []struct {
		name  string
		guard Guard
		auth  []string
		want  codes.Code
	}{
		{"no tokens", Guard{}, []string{bearer}, codes.PermissionDenied},
		{"no tokens no bearer", Guard{}, nil, codes.PermissionDenied},
		{"missing bearer", secureGuard, nil, codes.Unauthenticated},
		{"wrong bearer", secureGuard, []string{"Bearer wrong-token-xyz"}, codes.Unauthenticated},
		{"wrong scheme", secureGuard, []string{"Basic " + apiToken}, codes.Unauthenticated},
		{"two values", secureGuard, []string{bearer, bearer}, codes.Unauthenticated},
		{"insecure with tokens still checks", Guard{Tokens: NewTokens(apiToken), Insecure: true}, nil, codes.Unauthenticated},
		{"right bearer", secureGuard, []string{bearer}, codes.OK},
		{"insecure", Guard{Insecure: true}, nil, codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, svc := startGRPC(t, tt.guard)
			for name, call := range mutationCalls(c) {
				err := call(withAuth(t, tt.auth...))
				if status.Code(err) != tt.want {
					t.Fatalf("%s: %v, want %v", name, err, tt.want)
				}
				msg := status.Convert(err).Message()
				if tt.want == codes.PermissionDenied && !strings.Contains(msg, "--api-token-file") {
					t.Fatalf("%s: message %q does not say how to enable mutations", name, msg)
				}
				if strings.Contains(msg, apiToken) || strings.Contains(msg, "wrong-token") {
					t.Fatalf("%s: message echoes a token: %q", name, msg)
				}
			}
			calls, _ := svc.lastCall()
			if tt.want != codes.OK && len(calls) != 0 {
				t.Fatalf("refused mutations reached the service: %v", calls)
			}
			if tt.want == codes.OK && len(calls) != 4 {
				t.Fatalf("allowed mutations did not all reach the service: %v", calls)
			}
		})
	}
}

func TestPublicGRPCServiceErrors(t *testing.T) {
	want := map[int]codes.Code{400: codes.InvalidArgument, 503: codes.Unavailable, 504: codes.DeadlineExceeded, 500: codes.Internal}
	for _, ec := range serviceErrorCases {
		t.Run(ec.name, func(t *testing.T) {
			c, svc := startGRPC(t, secureGuard)
			svc.failWith(ec.err)
			code := want[ec.status]
			if ec.code == "canceled" {
				code = codes.Canceled
			}
			calls := mutationCalls(c)
			calls["validate"] = func(ctx context.Context) error {
				_, err := c.ValidateToken(ctx, &authpb.ValidateTokenRequest{Token: goodToken})
				return err
			}
			calls["authorize"] = func(ctx context.Context) error {
				_, err := c.Authorize(ctx, &authpb.AuthorizeRequest{UserId: "u", Resource: "r", Action: "read"})
				return err
			}
			calls["apikey"] = func(ctx context.Context) error {
				_, err := c.VerifyAPIKey(ctx, &authpb.VerifyAPIKeyRequest{ApiKey: goodKey})
				return err
			}
			calls["get session"] = func(ctx context.Context) error {
				_, err := c.GetSession(ctx, &authpb.GetSessionRequest{UserId: "u1"})
				return err
			}
			for name, call := range calls {
				err := call(withAuth(t, bearer))
				if status.Code(err) != code {
					t.Fatalf("%s: %v, want %v", name, err, code)
				}
				msg := status.Convert(err).Message()
				for _, secret := range []string{"hunter2", goodToken, goodKey} {
					if strings.Contains(msg, secret) {
						t.Fatalf("%s: message leaks %q: %q", name, secret, msg)
					}
				}
			}
		})
	}
}

// TestPublicGRPCMetadataJSON: metadata always comes as a JSON object.
func TestPublicGRPCMetadataJSON(t *testing.T) {
	c, _ := startGRPC(t, secureGuard)
	resp, err := c.ValidateToken(withAuth(t), &authpb.ValidateTokenRequest{Token: goodToken})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(resp.GetMetadataJson()), &m); err != nil {
		t.Fatalf("metadata_json %q: %v", resp.GetMetadataJson(), err)
	}
}
