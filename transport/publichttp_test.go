package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/avion/authnode/auth"
)

// testNow is the clock of the HTTP API under test.
var testNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// secureGuard accepts apiToken only.
var secureGuard = Guard{Tokens: NewTokens(apiToken)}

const bearer = "Bearer " + apiToken

// startHTTP serves the public HTTP API over a new fake service with guard.
func startHTTP(t *testing.T, guard Guard) (*httptest.Server, *fakeService) {
	t.Helper()
	svc := newFakeService()
	return serveHTTP(t, svc, guard), svc
}

// serveHTTP serves the public HTTP API over svc with guard.
func serveHTTP(t *testing.T, svc Service, guard Guard) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(newPublicAPI(svc, guard, func() time.Time { return testNow }).handler())
	t.Cleanup(srv.Close)
	return srv
}

// reply is a response as the tests look at it.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// errorCode returns the error.code of a JSON error body.
func (r reply) errorCode(t *testing.T) string {
	t.Helper()
	var v struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body %q is not JSON: %v", r.body, err)
	}
	if v.Error.Code == "" || v.Error.Message == "" {
		t.Fatalf("body %q has no error code and message", r.body)
	}
	return v.Error.Code
}

// send makes one request; authorization, when not empty, is the
// Authorization header.
func send(t *testing.T, srv *httptest.Server, method, path, body, authorization string) reply {
	t.Helper()
	return sendWithID(t, srv, method, path, body, authorization, "")
}

func sendRequest(t *testing.T, srv *httptest.Server, req *http.Request) reply {
	t.Helper()
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// assertJSON fails unless got and want are the same JSON value.
func assertJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("response %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %q is not JSON: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("response\n got %s\nwant %s", got, want)
	}
}

func TestPublicHTTPRoutes(t *testing.T) {
	future := testNow.Add(time.Hour).Format(time.RFC3339)
	tests := []struct {
		name, method, path, body, auth string
		status                         int
		want                           string // the whole JSON answer; "" for none
	}{
		{"validate body", "POST", "/v1/tokens/validate", `{"token":"` + goodToken + `"}`, "", 200,
			`{"valid":true,"user_id":"u1","scopes":["read","write"],"expires_at":"2030-01-02T03:04:05Z","token_type":"access","metadata":{"tenant":"t1"}}`},
		{"validate header", "POST", "/v1/tokens/validate", "", "Bearer " + goodToken, 200,
			`{"valid":true,"user_id":"u1","scopes":["read","write"],"expires_at":"2030-01-02T03:04:05Z","token_type":"access","metadata":{"tenant":"t1"}}`},
		{"validate body wins", "POST", "/v1/tokens/validate", `{"token":"` + goodToken + `"}`, "Bearer " + expiredToken, 200, ""},
		{"validate empty body field uses header", "POST", "/v1/tokens/validate", `{}`, "Bearer " + expiredToken, 401,
			`{"valid":false,"error":{"code":"expired","message":"token expired"}}`},
		{"validate invalid", "POST", "/v1/tokens/validate", `{"token":"` + expiredToken + `"}`, "", 401,
			`{"valid":false,"error":{"code":"expired","message":"token expired"}}`},
		{"revoke", "POST", "/v1/tokens/revoke", `{"user_id":"u1","before":"2025-12-31T00:00:00Z"}`, bearer, 200,
			`{"acknowledged":3,"members":3,"watermark":"2025-12-31T00:00:00Z"}`},
		{"revoke now", "POST", "/v1/tokens/revoke", `{"user_id":"u1"}`, bearer, 200,
			`{"acknowledged":3,"members":3,"watermark":"2030-01-02T03:04:05Z"}`},
		{"authorize allow", "POST", "/v1/authorize", `{"user_id":"u1","resource":"doc:1","action":"read","conditions":{"ip":"10.0.0.1"}}`, "", 200,
			`{"allowed":true,"user_id":"u1","resource":"doc:1","action":"read"}`},
		{"authorize deny", "POST", "/v1/authorize", `{"user_id":"u1","resource":"doc:1","action":"delete"}`, "", 200,
			`{"allowed":false,"user_id":"u1","resource":"doc:1","action":"delete"}`},
		{"apikey valid", "POST", "/v1/apikeys/verify", `{"api_key":"` + goodKey + `"}`, "", 200,
			`{"valid":true,"user_id":"u1","name":"ci","scopes":["deploy"],"expires_at":"2030-01-02T03:04:05Z"}`},
		{"apikey revoked", "POST", "/v1/apikeys/verify", `{"api_key":"` + revokedKey + `"}`, "", 401,
			`{"valid":false,"error":{"code":"revoked","message":"api key not accepted: revoked"}}`},
		{"apikey unknown", "POST", "/v1/apikeys/verify", `{"api_key":"ak_nope"}`, "", 401,
			`{"valid":false,"error":{"code":"invalid","message":"api key not accepted: invalid"}}`},
		{"session get", "GET", "/v1/sessions/u2", "", "", 200,
			`{"user_id":"u2","data":{"cart":[1,2]},"expires_at":"2026-01-01T02:00:00Z"}`},
		{"session get missing", "GET", "/v1/sessions/nobody", "", "", 404,
			`{"error":{"code":"not_found","message":"no session for this user"}}`},
		{"session put expires_at", "PUT", "/v1/sessions/u3", `{"data":{"a": 1},"expires_at":"` + future + `"}`, bearer, 200,
			`{"user_id":"u3","expires_at":"2026-01-01T01:00:00Z"}`},
		{"session put ttl", "PUT", "/v1/sessions/u3", `{"data":{},"ttl_seconds":90}`, bearer, 200,
			`{"user_id":"u3","expires_at":"2026-01-01T00:01:30Z"}`},
		{"session delete", "DELETE", "/v1/sessions/u2", "", bearer, 204, ""},
		{"invalidate", "POST", "/v1/users/u1/invalidate", "", bearer, 200, `{"acknowledged":2,"members":3}`},
		{"invalidate empty object", "POST", "/v1/users/u1/invalidate", `{}`, bearer, 200, `{"acknowledged":2,"members":3}`},
		{"escaped slash in user id", "GET", "/v1/sessions/a%2Fb", "", "", 404,
			`{"error":{"code":"not_found","message":"no session for this user"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, svc := startHTTP(t, secureGuard)
			svc.putSession("u2", `{"cart": [1, 2]}`, testNow.Add(2*time.Hour))
			r := send(t, srv, tt.method, tt.path, tt.body, tt.auth)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d; body %s", r.status, tt.status, r.body)
			}
			if tt.want != "" {
				assertJSON(t, r.body, tt.want)
			}
			if r.status == http.StatusNoContent && len(r.body) != 0 {
				t.Fatalf("204 with a body %q", r.body)
			}
			if r.status != http.StatusNoContent && r.header.Get("Content-Type") != "application/json" {
				t.Fatalf("Content-Type %q", r.header.Get("Content-Type"))
			}
		})
	}
}

// TestPublicHTTPArguments checks what reaches the service.
func TestPublicHTTPArguments(t *testing.T) {
	srv, svc := startHTTP(t, secureGuard)

	send(t, srv, "POST", "/v1/tokens/validate", `{"token":"`+goodToken+`"}`, "Bearer "+expiredToken)
	if _, c := svc.lastCall(); c.token != goodToken {
		t.Fatalf("validated %q, want the body's token", c.token)
	}
	send(t, srv, "POST", "/v1/tokens/validate", "", "bearer "+goodToken)
	if _, c := svc.lastCall(); c.token != goodToken {
		t.Fatalf("validated %q, want the header's token", c.token)
	}
	send(t, srv, "POST", "/v1/tokens/revoke", `{"user_id":"u1"}`, bearer)
	if _, c := svc.lastCall(); c.userID != "u1" || !c.before.IsZero() {
		t.Fatalf("revoke got %+v, want u1 and the zero time", c)
	}
	send(t, srv, "POST", "/v1/authorize", `{"user_id":"u1","resource":"r","action":"a","conditions":{"ip":"1.2.3.4"}}`, "")
	if _, c := svc.lastCall(); c.resource != "r" || c.action != "a" || c.conditions["ip"] != "1.2.3.4" {
		t.Fatalf("authorize got %+v", c)
	}
	send(t, srv, "PUT", "/v1/sessions/u9", `{"data": {"k": [1, 2]} , "ttl_seconds": 60}`, bearer)
	if _, c := svc.lastCall(); c.userID != "u9" || string(c.data) != `{"k":[1,2]}` || !c.expiresAt.Equal(testNow.Add(time.Minute)) {
		t.Fatalf("put got %+v data %s", c, c.data)
	}
	r := send(t, srv, "GET", "/v1/sessions/u9", "", "")
	assertJSON(t, r.body, `{"user_id":"u9","data":{"k":[1,2]},"expires_at":"2026-01-01T00:01:00Z"}`)
	send(t, srv, "DELETE", "/v1/sessions/u9", "", bearer)
	if r := send(t, srv, "GET", "/v1/sessions/u9", "", ""); r.status != http.StatusNotFound {
		t.Fatalf("after delete: %d", r.status)
	}
}

// badCase is one request that must be refused with status and code.
type badCase struct {
	name, method, path, body string
	status                   int
	code                     string
}

func badInputCases() []badCase {
	big := `{"token":"` + strings.Repeat("a", MaxBodyBytes) + `"}`
	past := testNow.Add(-time.Second).Format(time.RFC3339)
	farFuture := testNow.Add(maxSessionTTL + time.Hour).Format(time.RFC3339)
	cases := []badCase{
		{"validate missing token", "POST", "/v1/tokens/validate", `{}`, 400, "invalid_request"},
		{"validate no body no header", "POST", "/v1/tokens/validate", ``, 400, "invalid_request"},
		{"validate token not a string", "POST", "/v1/tokens/validate", `{"token":1}`, 400, "invalid_request"},
		{"revoke missing user", "POST", "/v1/tokens/revoke", `{"before":"2025-01-01T00:00:00Z"}`, 400, "invalid_request"},
		{"revoke bad time", "POST", "/v1/tokens/revoke", `{"user_id":"u1","before":"yesterday"}`, 400, "invalid_request"},
		{"revoke future", "POST", "/v1/tokens/revoke", `{"user_id":"u1","before":"2099-01-01T00:00:00Z"}`, 400, "invalid_request"},
		{"revoke empty body", "POST", "/v1/tokens/revoke", ``, 400, "invalid_request"},
		{"authorize missing action", "POST", "/v1/authorize", `{"user_id":"u1","resource":"r"}`, 400, "invalid_request"},
		{"authorize missing user", "POST", "/v1/authorize", `{"resource":"r","action":"a"}`, 400, "invalid_request"},
		{"authorize condition not a string", "POST", "/v1/authorize", `{"user_id":"u","resource":"r","action":"a","conditions":{"n":1}}`, 400, "invalid_request"},
		{"authorize conditions a list", "POST", "/v1/authorize", `{"user_id":"u","resource":"r","action":"a","conditions":[]}`, 400, "invalid_request"},
		{"apikey missing", "POST", "/v1/apikeys/verify", `{"api_key":""}`, 400, "invalid_request"},
		{"apikey null body", "POST", "/v1/apikeys/verify", `null`, 400, "invalid_request"},
		{"put both expiries", "PUT", "/v1/sessions/u1", `{"data":{},"ttl_seconds":5,"expires_at":"2026-01-01T01:00:00Z"}`, 400, "invalid_request"},
		{"put no expiry", "PUT", "/v1/sessions/u1", `{"data":{}}`, 400, "invalid_request"},
		{"put past", "PUT", "/v1/sessions/u1", `{"data":{},"expires_at":"` + past + `"}`, 400, "invalid_request"},
		{"put now", "PUT", "/v1/sessions/u1", `{"data":{},"expires_at":"2026-01-01T00:00:00Z"}`, 400, "invalid_request"},
		{"put too far", "PUT", "/v1/sessions/u1", `{"data":{},"expires_at":"` + farFuture + `"}`, 400, "invalid_request"},
		{"put bad time", "PUT", "/v1/sessions/u1", `{"data":{},"expires_at":"tomorrow"}`, 400, "invalid_request"},
		{"put ttl zero", "PUT", "/v1/sessions/u1", `{"data":{},"ttl_seconds":0}`, 400, "invalid_request"},
		{"put ttl negative", "PUT", "/v1/sessions/u1", `{"data":{},"ttl_seconds":-5}`, 400, "invalid_request"},
		{"put ttl huge", "PUT", "/v1/sessions/u1", `{"data":{},"ttl_seconds":9223372036854775807}`, 400, "invalid_request"},
		{"put ttl overflow", "PUT", "/v1/sessions/u1", `{"data":{},"ttl_seconds":1e30}`, 400, "invalid_request"},
		{"put ttl fraction", "PUT", "/v1/sessions/u1", `{"data":{},"ttl_seconds":1.5}`, 400, "invalid_request"},
		{"put data missing", "PUT", "/v1/sessions/u1", `{"ttl_seconds":5}`, 400, "invalid_request"},
		{"put data null", "PUT", "/v1/sessions/u1", `{"data":null,"ttl_seconds":5}`, 400, "invalid_request"},
		{"put data array", "PUT", "/v1/sessions/u1", `{"data":[1],"ttl_seconds":5}`, 400, "invalid_request"},
		{"put data string", "PUT", "/v1/sessions/u1", `{"data":"x","ttl_seconds":5}`, 400, "invalid_request"},
		{"invalidate unknown field", "POST", "/v1/users/u1/invalidate", `{"all":true}`, 400, "invalid_request"},
		{"wrong method validate", "GET", "/v1/tokens/validate", ``, 405, "method_not_allowed"},
		{"wrong method authorize", "PUT", "/v1/authorize", `{}`, 405, "method_not_allowed"},
		{"wrong method sessions", "POST", "/v1/sessions/u1", `{}`, 405, "method_not_allowed"},
		{"wrong method invalidate", "DELETE", "/v1/users/u1/invalidate", ``, 405, "method_not_allowed"},
		{"unknown route", "GET", "/v1/nothing", ``, 404, "not_found"},
		{"root", "GET", "/", ``, 404, "not_found"},
		{"trailing slash", "POST", "/v1/authorize/", `{}`, 404, "not_found"},
		{"double slash", "POST", "/v1//authorize", `{}`, 404, "not_found"},
		{"dot segment", "GET", "/v1/sessions/../sessions/u1", ``, 404, "not_found"},
		{"session no user", "GET", "/v1/sessions/", ``, 404, "not_found"},
		{"session sub path", "GET", "/v1/sessions/u1/x", ``, 404, "not_found"},
		{"too large", "POST", "/v1/tokens/validate", big, 413, "body_too_large"},
	}
	// The same malformed bodies on every route that takes one.
	bodies := []struct{ name, body string }{
		{"invalid JSON", `{"user_id":`},
		{"not JSON", `hello`},
		{"unknown field", `{"nope":1}`},
		{"array", `[]`},
		{"number", `42`},
		{"trailing data", `{} {}`},
		{"wrong type", `{"user_id":[],"token":{},"api_key":false,"data":1,"resource":2}`},
	}
	routes := []struct{ method, path string }{
		{"POST", "/v1/tokens/validate"}, {"POST", "/v1/tokens/revoke"}, {"POST", "/v1/authorize"},
		{"POST", "/v1/apikeys/verify"}, {"PUT", "/v1/sessions/u1"}, {"POST", "/v1/users/u1/invalidate"},
	}
	for _, rt := range routes {
		for _, b := range bodies {
			cases = append(cases, badCase{rt.path + " " + b.name, rt.method, rt.path, b.body, 400, "invalid_request"})
		}
		cases = append(cases, badCase{rt.path + " too large", rt.method, rt.path, big, 413, "body_too_large"})
	}
	return cases
}

func TestPublicHTTPBadInput(t *testing.T) {
	srv, svc := startHTTP(t, secureGuard)
	for _, tt := range badInputCases() {
		t.Run(tt.name, func(t *testing.T) {
			auth := bearer
			if tt.path == "/v1/tokens/validate" {
				auth = "" // the header would be the token to validate
			}
			r := send(t, srv, tt.method, tt.path, tt.body, auth)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d; body %s", r.status, tt.status, r.body)
			}
			if code := r.errorCode(t); code != tt.code {
				t.Fatalf("code %q, want %q", code, tt.code)
			}
			if r.status == http.StatusMethodNotAllowed && r.header.Get("Allow") == "" {
				t.Fatal("405 without Allow")
			}
		})
	}
	if calls, _ := svc.lastCall(); len(calls) != 0 {
		t.Fatalf("bad input reached the service: %v", calls)
	}
}

func TestPublicHTTPContentType(t *testing.T) {
	srv, _ := startHTTP(t, secureGuard)
	req, err := http.NewRequestWithContext(context.Background(), "POST", srv.URL+"/v1/authorize", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain")
	r := sendRequest(t, srv, req)
	if r.status != http.StatusBadRequest || r.errorCode(t) != "invalid_request" {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
}

func TestPublicHTTPAllowHeader(t *testing.T) {
	srv, _ := startHTTP(t, secureGuard)
	r := send(t, srv, "PATCH", "/v1/sessions/u1", `{}`, "")
	if got := r.header.Get("Allow"); got != "DELETE, GET, HEAD, PUT" {
		t.Fatalf("Allow %q", got)
	}
}

// mutationRoutes are the routes the guard protects, with a valid request.
var mutationRoutes = []struct{ name, method, path, body string }{
	{"revoke", "POST", "/v1/tokens/revoke", `{"user_id":"u1"}`},
	{"put session", "PUT", "/v1/sessions/u1", `{"data":{},"ttl_seconds":60}`},
	{"delete session", "DELETE", "/v1/sessions/u1", ``},
	{"invalidate", "POST", "/v1/users/u1/invalidate", ``},
}

func TestPublicHTTPGuard(t *testing.T) {
	const wrong = "Bearer not-the-token-xyz"
	tests := []struct {
		name   string
		guard  Guard
		auth   string
		status int    // 0: any 2xx
		code   string // the error code when refused
	}{
		{"no tokens", Guard{}, bearer, 403, "mutations_disabled"},
		{"no tokens no bearer", Guard{}, "", 403, "mutations_disabled"},
		{"missing bearer", secureGuard, "", 401, "unauthenticated"},
		{"wrong bearer", secureGuard, wrong, 401, "unauthenticated"},
		{"wrong scheme", secureGuard, "Basic " + apiToken, 401, "unauthenticated"},
		{"empty bearer", secureGuard, "Bearer ", 401, "unauthenticated"},
		{"insecure with tokens still checks", Guard{Tokens: NewTokens(apiToken), Insecure: true}, "", 401, "unauthenticated"},
		{"right bearer", secureGuard, bearer, 0, ""},
		{"right bearer lower-case scheme", secureGuard, "bearer " + apiToken, 0, ""},
		{"second token", Guard{Tokens: NewTokens("other", apiToken)}, bearer, 0, ""},
		{"insecure", Guard{Insecure: true}, "", 0, ""},
	}
	for _, tt := range tests {
		for _, rt := range mutationRoutes {
			t.Run(tt.name+"/"+rt.name, func(t *testing.T) {
				srv, svc := startHTTP(t, tt.guard)
				r := send(t, srv, rt.method, rt.path, rt.body, tt.auth)
				calls, _ := svc.lastCall()
				if tt.status == 0 {
					if r.status < 200 || r.status > 299 || len(calls) != 1 {
						t.Fatalf("status %d, calls %v; want allowed", r.status, calls)
					}
					return
				}
				if r.status != tt.status || r.errorCode(t) != tt.code {
					t.Fatalf("status %d body %s, want %d %s", r.status, r.body, tt.status, tt.code)
				}
				if len(calls) != 0 {
					t.Fatalf("refused mutation reached the service: %v", calls)
				}
				if tt.status == 401 && r.header.Get("WWW-Authenticate") != "Bearer" {
					t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
				}
				if tt.status == 403 && !strings.Contains(string(r.body), "--api-token-file") {
					t.Fatalf("403 does not say how to enable mutations: %s", r.body)
				}
				if strings.Contains(string(r.body), apiToken) || strings.Contains(string(r.body), "not-the-token") {
					t.Fatalf("answer echoes a token: %s", r.body)
				}
			})
		}
	}
}

func TestPublicHTTPReadsNeedNoToken(t *testing.T) {
	srv, _ := startHTTP(t, Guard{})
	for _, rt := range []struct{ method, path, body string }{
		{"POST", "/v1/tokens/validate", `{"token":"x"}`},
		{"POST", "/v1/authorize", `{"user_id":"u","resource":"r","action":"read"}`},
		{"POST", "/v1/apikeys/verify", `{"api_key":"` + goodKey + `"}`},
		{"GET", "/v1/sessions/u1", ``},
	} {
		if r := send(t, srv, rt.method, rt.path, rt.body, ""); r.status == 401 || r.status == 403 {
			t.Fatalf("%s %s: %d", rt.method, rt.path, r.status)
		}
	}
}

func TestGuardCheck(t *testing.T) {
	tests := []struct {
		name   string
		guard  Guard
		bearer string
		want   error
	}{
		{"zero guard", Guard{}, apiToken, ErrMutationsDisabled},
		{"insecure", Guard{Insecure: true}, "", nil},
		{"right", secureGuard, apiToken, nil},
		{"wrong", secureGuard, apiToken + "x", ErrUnauthenticated},
		{"missing", secureGuard, "", ErrUnauthenticated},
		{"empty tokens ignored", Guard{Tokens: NewTokens("")}, "", ErrMutationsDisabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.guard.Check(tt.bearer); !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
		})
	}
}

// serviceErrorCases are Service errors and how both APIs report them.
var serviceErrorCases = []struct {
	name   string
	err    error
	status int
	code   string
}{
	{"unavailable", fmt.Errorf("load policy: %w", auth.ErrUnavailable), 503, "unavailable"},
	{"invalid input", fmt.Errorf("%w: user id too long", auth.ErrInvalidInput), 400, "invalid_request"},
	{"deadline", fmt.Errorf("owner: %w", context.DeadlineExceeded), 504, "deadline_exceeded"},
	{"canceled", context.Canceled, 503, "canceled"},
	{"unknown", errors.New("pq: password=hunter2 dsn postgres://admin:hunter2@db"), 500, "internal"},
}

func TestPublicHTTPServiceErrors(t *testing.T) {
	routes := []struct{ method, path, body string }{
		{"POST", "/v1/tokens/validate", `{"token":"` + goodToken + `"}`},
		{"POST", "/v1/tokens/revoke", `{"user_id":"u1"}`},
		{"POST", "/v1/authorize", `{"user_id":"u","resource":"r","action":"read"}`},
		{"POST", "/v1/apikeys/verify", `{"api_key":"` + goodKey + `"}`},
		{"GET", "/v1/sessions/u1", ``},
		{"PUT", "/v1/sessions/u1", `{"data":{"s":"secret-session-data"},"ttl_seconds":60}`},
		{"DELETE", "/v1/sessions/u1", ``},
		{"POST", "/v1/users/u1/invalidate", ``},
	}
	for _, ec := range serviceErrorCases {
		for _, rt := range routes {
			t.Run(ec.name+rt.method+rt.path, func(t *testing.T) {
				srv, svc := startHTTP(t, secureGuard)
				svc.failWith(ec.err)
				r := send(t, srv, rt.method, rt.path, rt.body, bearer)
				if r.status != ec.status || r.errorCode(t) != ec.code {
					t.Fatalf("status %d body %s, want %d %s", r.status, r.body, ec.status, ec.code)
				}
				for _, secret := range []string{"hunter2", goodToken, goodKey, "secret-session-data"} {
					if strings.Contains(string(r.body), secret) {
						t.Fatalf("answer leaks %q: %s", secret, r.body)
					}
				}
			})
		}
	}
}

func TestPublicHTTPInvalidAnswersLeakNothing(t *testing.T) {
	srv, _ := startHTTP(t, secureGuard)
	for _, r := range []reply{
		send(t, srv, "POST", "/v1/tokens/validate", `{"token":"`+expiredToken+`"}`, ""),
		send(t, srv, "POST", "/v1/apikeys/verify", `{"api_key":"`+revokedKey+`"}`, ""),
		send(t, srv, "POST", "/v1/tokens/validate", `{"token":"`+expiredToken+`","x":1}`, ""),
	} {
		if strings.Contains(string(r.body), expiredToken) || strings.Contains(string(r.body), revokedKey) {
			t.Fatalf("answer echoes the secret: %s", r.body)
		}
	}
}

// TestPublicHTTPBadStoredData: data the service returns that is not JSON is
// an internal error, not a broken answer.
func TestPublicHTTPBadStoredData(t *testing.T) {
	srv, svc := startHTTP(t, secureGuard)
	svc.putSession("u1", `{"broken`, testNow.Add(time.Hour))
	svc.putSession("u2", ``, testNow.Add(time.Hour))
	for _, u := range []string{"u1", "u2"} {
		r := send(t, srv, "GET", "/v1/sessions/"+u, "", "")
		if r.status != 500 || r.errorCode(t) != "internal" {
			t.Fatalf("%s: status %d body %s", u, r.status, r.body)
		}
	}
}

// fuzzRoutes are the routes that take a body.
var fuzzRoutes = []struct{ method, path string }{
	{"POST", "/v1/tokens/validate"},
	{"POST", "/v1/tokens/revoke"},
	{"POST", "/v1/authorize"},
	{"POST", "/v1/apikeys/verify"},
	{"PUT", "/v1/sessions/u1"},
	{"POST", "/v1/users/u1/invalidate"},
}

// FuzzDecodeRequests sends arbitrary bodies to every route that takes one,
// with a service that succeeds: the answer is never 5xx and always JSON.
func FuzzDecodeRequests(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `null`, `[]`, `"x"`, `{"token":"a.b.c"}`, `{"token":1}`,
		`{"user_id":"u1","before":"2025-12-31T00:00:00Z"}`, `{"user_id":"u1","before":"2099-01-01T00:00:00Z"}`,
		`{"user_id":"u","resource":"r","action":"read","conditions":{"ip":"1"}}`,
		`{"api_key":"ak_good_0123456789"}`, `{"api_key":"ak_x"}`,
		`{"data":{"a":1},"ttl_seconds":60}`, `{"data":{},"expires_at":"2026-01-01T01:00:00Z"}`,
		`{"data":{},"ttl_seconds":9223372036854775807}`, `{"data":[],"expires_at":"x"}`,
		`{"a":`, `{} {}`, "\xff\xfe", `{"user_id":"\u0000"}`, `{"conditions":{"a":{"b":[]}}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		h := newPublicAPI(newFakeService(), secureGuard, func() time.Time { return testNow }).handler()
		for _, rt := range fuzzRoutes {
			req := httptest.NewRequest(rt.method, rt.path, strings.NewReader(string(body)))
			req.Header.Set("Authorization", bearer)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code >= 500 {
				t.Fatalf("%s %s: status %d for %q: %s", rt.method, rt.path, w.Code, body, w.Body)
			}
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%s %s: answer %q is not JSON", rt.method, rt.path, w.Body)
			}
		}
	})
}
