package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/avion/authnode/auth"
)

// adminTestToken is the admin token of the tests; it must never reach the log.
const adminTestToken = "s3cret-admin-token-4f1d"

// fakeAdmin is an Admin that records its calls and answers canned results.
type fakeAdmin struct {
	mu     sync.Mutex
	calls  []string
	ids    []string
	recent int
	user   string

	err     error // returned by every method that can fail
	panics  any   // when not nil, ClusterInfo panics with it
	loaded  int
	issuers map[string]int
	acks    Acks
	info    ClusterInfo
}

func (f *fakeAdmin) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

func (f *fakeAdmin) Warmup(_ context.Context, userIDs []string, recent int) (int, error) {
	f.record("Warmup")
	f.mu.Lock()
	f.ids, f.recent = userIDs, recent
	f.mu.Unlock()
	return f.loaded, f.err
}

func (f *fakeAdmin) PreloadJWKS(context.Context) (map[string]int, error) {
	f.record("PreloadJWKS")
	return f.issuers, f.err
}

func (f *fakeAdmin) DropUser(_ context.Context, userID string) (Acks, error) {
	f.record("DropUser")
	f.mu.Lock()
	f.user = userID
	f.mu.Unlock()
	return f.acks, f.err
}

func (f *fakeAdmin) DropAll(context.Context) (Acks, error) {
	f.record("DropAll")
	return f.acks, f.err
}

func (f *fakeAdmin) ClusterInfo() ClusterInfo {
	f.record("ClusterInfo")
	if f.panics != nil {
		panic(f.panics)
	}
	return f.info
}

func (f *fakeAdmin) callList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// adminLogBuffer is a bytes.Buffer safe for a server goroutine to write
// while the test reads it.
type adminLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *adminLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// take returns what was written and empties the buffer.
func (b *adminLogBuffer) take() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	b.buf.Reset()
	return s
}

// adminFixture is an admin handler over a fakeAdmin with its log captured.
type adminFixture struct {
	h   http.Handler
	fa  *fakeAdmin
	log *adminLogBuffer
}

// newAdminFixture serves a fresh fakeAdmin; token "" configures no token.
func newAdminFixture(token string) *adminFixture {
	fa := &fakeAdmin{
		loaded:  3,
		issuers: map[string]int{"https://idp.example": 2},
		acks:    Acks{Acknowledged: 2, Members: 3},
		info: ClusterInfo{
			Node:      "n1",
			Members:   []MemberInfo{{Name: "n1", State: "alive", Address: "10.0.0.1:7946", PeerAddr: "10.0.0.1:9091"}},
			RingEpoch: 7,
			Groups:    map[string]GroupInfo{"policies": {Entries: 5, Bytes: 500}},
			CacheMode: "cluster",
		},
	}
	buf := &adminLogBuffer{}
	logger := slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return &adminFixture{h: AdminHTTP(fa, AdminConfig{Token: NewTokens(token), Logger: logger}), fa: fa, log: buf}
}

// adminReq describes one request of a test.
type adminReq struct {
	method, path, body string
	auth               string            // the Authorization header; "" sends none
	header             map[string]string // more request headers
}

// do serves req and returns the recorded response.
func (f *adminFixture) do(t *testing.T, req adminReq) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if req.body != "" {
		body = strings.NewReader(req.body)
	}
	r := httptest.NewRequest(req.method, "http://admin.test"+req.path, body)
	if req.body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if req.auth != "" {
		r.Header.Set("Authorization", req.auth)
	}
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

// lines parses the captured log, one JSON object per line, and resets it.
func (f *adminFixture) lines(t *testing.T) []map[string]any {
	t.Helper()
	raw := f.log.take()
	if strings.Contains(raw, adminTestToken) {
		t.Fatalf("the token is in the log: %s", raw)
	}
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(raw), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// audit returns the one audit line the last call wrote, failing when there
// is not exactly one.
func (f *adminFixture) audit(t *testing.T) map[string]any {
	t.Helper()
	lines := f.lines(t)
	if len(lines) != 1 {
		t.Fatalf("got %d log lines, want exactly 1: %v", len(lines), lines)
	}
	line := lines[0]
	if line["msg"] != "admin" {
		t.Errorf("audit msg = %v, want admin", line["msg"])
	}
	for _, k := range []string{"request_id", "method", "path", "remote_addr", "status", "duration", "outcome"} {
		if _, ok := line[k]; !ok {
			t.Errorf("audit line lacks %q: %v", k, line)
		}
	}
	return line
}

// adminErrorCode returns the code of a JSON error body, failing when the
// response is not one.
func adminErrorCode(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body struct {
		Error apiError `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Code == "" {
		t.Fatalf("not a JSON error body (%v): %s", err, w.Body)
	}
	return body.Error.Code
}

const adminBearer = "Bearer " + adminTestToken

func TestAdminRoutes(t *testing.T) {
	cases := []struct {
		name     string
		req      adminReq
		wantBody string
		wantPath string
		wantCall string
	}{
		{"warmup ids", adminReq{method: "POST", path: "/admin/cache/warmup", body: `{"user_ids":["u1","u2"]}`}, `{"loaded":3}`, "/admin/cache/warmup", "Warmup"},
		{"warmup recent", adminReq{method: "POST", path: "/admin/cache/warmup", body: `{"recent":50}`}, `{"loaded":3}`, "/admin/cache/warmup", "Warmup"},
		{"preload empty", adminReq{method: "POST", path: "/admin/jwks/preload"}, `{"issuers":{"https://idp.example":2}}`, "/admin/jwks/preload", "PreloadJWKS"},
		{"preload object", adminReq{method: "POST", path: "/admin/jwks/preload", body: `{}`}, `{"issuers":{"https://idp.example":2}}`, "/admin/jwks/preload", "PreloadJWKS"},
		{"drop user", adminReq{method: "DELETE", path: "/admin/cache/user/alice%2F1"}, `{"acknowledged":2,"members":3}`, "/admin/cache/user/{user_id}", "DropUser"},
		{"drop all", adminReq{method: "DELETE", path: "/admin/cache/all"}, `{"acknowledged":2,"members":3}`, "/admin/cache/all", "DropAll"},
		{"cluster", adminReq{method: "GET", path: "/admin/cluster"}, "", "/admin/cluster", "ClusterInfo"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newAdminFixture(adminTestToken)
			tc.req.auth = adminBearer
			w := f.do(t, tc.req)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d, body %s", w.Code, w.Body)
			}
			if tc.wantBody != "" && strings.TrimSpace(w.Body.String()) != tc.wantBody {
				t.Errorf("body %s, want %s", w.Body, tc.wantBody)
			}
			if got := f.fa.callList(); !slices.Equal(got, []string{tc.wantCall}) {
				t.Errorf("calls %v, want [%s]", got, tc.wantCall)
			}
			line := f.audit(t)
			if line["path"] != tc.wantPath || line["method"] != tc.req.method || line["status"] != 200.0 || line["outcome"] != "ok" || line["level"] != "INFO" {
				t.Errorf("audit line %v", line)
			}
		})
	}
}

func TestAdminRouteArguments(t *testing.T) {
	f := newAdminFixture(adminTestToken)
	f.do(t, adminReq{method: "POST", path: "/admin/cache/warmup", body: `{"user_ids":["u1","u2"]}`, auth: adminBearer})
	if !slices.Equal(f.fa.ids, []string{"u1", "u2"}) || f.fa.recent != 0 {
		t.Errorf("Warmup(%v, %d), want ([u1 u2], 0)", f.fa.ids, f.fa.recent)
	}
	f.do(t, adminReq{method: "POST", path: "/admin/cache/warmup", body: `{"recent":10000,"user_ids":null}`, auth: adminBearer})
	if f.fa.ids != nil || f.fa.recent != 10000 {
		t.Errorf("Warmup(%v, %d), want (nil, 10000)", f.fa.ids, f.fa.recent)
	}
	f.do(t, adminReq{method: "DELETE", path: "/admin/cache/user/alice%2F1", auth: adminBearer})
	if f.fa.user != "alice/1" {
		t.Errorf("DropUser(%q), want alice/1", f.fa.user)
	}
	lines := f.lines(t)
	if len(lines) != 3 || lines[2]["user_id"] != "alice/1" {
		t.Errorf("audit lines %v", lines)
	}

	w := f.do(t, adminReq{method: "GET", path: "/admin/cluster", auth: adminBearer})
	var info ClusterInfo
	if err := json.Unmarshal(w.Body.Bytes(), &info); err != nil {
		t.Fatal(err)
	}
	if info.Node != "n1" || len(info.Members) != 1 || info.RingEpoch != 7 || info.Groups["policies"].Entries != 5 || info.CacheMode != "cluster" {
		t.Errorf("cluster info %+v", info)
	}
}

func TestAdminPreloadNilIssuersIsEmptyObject(t *testing.T) {
	f := newAdminFixture("")
	f.fa.issuers = nil
	w := f.do(t, adminReq{method: "POST", path: "/admin/jwks/preload"})
	if w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != `{"issuers":{}}` {
		t.Errorf("status %d, body %s", w.Code, w.Body)
	}
}

// adminEveryPath is one request to each route the admin handler serves,
// pprof and an unknown path included.
var adminEveryPath = []adminReq{
	{method: "POST", path: "/admin/cache/warmup", body: `{"recent":1}`},
	{method: "POST", path: "/admin/jwks/preload"},
	{method: "DELETE", path: "/admin/cache/user/u1"},
	{method: "DELETE", path: "/admin/cache/all"},
	{method: "GET", path: "/admin/cluster"},
	{method: "GET", path: "/debug/pprof/"},
	{method: "GET", path: "/debug/pprof/heap"},
	{method: "GET", path: "/debug/pprof/goroutine?debug=1"},
	{method: "GET", path: "/debug/pprof/cmdline"},
	{method: "GET", path: "/debug/pprof/symbol"},
	{method: "GET", path: "/debug/pprof/trace?seconds=0.01"},
	{method: "GET", path: "/debug/pprof/profile?seconds=1"},
	{method: "GET", path: "/no/such/route"},
}

func TestAdminTokenRequiredOnEveryRoute(t *testing.T) {
	refused := []string{"", "Bearer wrong-token", "Bearer " + adminTestToken + "x", "Basic " + adminTestToken, "Bearer", adminTestToken}
	for _, req := range adminEveryPath {
		for _, auth := range refused {
			t.Run(req.method+" "+req.path+" "+auth, func(t *testing.T) {
				f := newAdminFixture(adminTestToken)
				req.auth = auth
				w := f.do(t, req)
				if w.Code != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401", w.Code)
				}
				if got := w.Header().Get("WWW-Authenticate"); got != "Bearer" {
					t.Errorf("WWW-Authenticate = %q", got)
				}
				if code := adminErrorCode(t, w); code != "unauthenticated" {
					t.Errorf("code %q", code)
				}
				if strings.Contains(w.Body.String(), adminTestToken) {
					t.Errorf("the token is in the response: %s", w.Body)
				}
				if calls := f.fa.callList(); len(calls) != 0 {
					t.Errorf("Admin called: %v", calls)
				}
				line := f.audit(t)
				if line["status"] != 401.0 || line["outcome"] != "unauthenticated" || line["level"] != "WARN" {
					t.Errorf("audit line %v", line)
				}
			})
		}
	}
}

func TestAdminTokenAcceptedOnEveryRoute(t *testing.T) {
	for _, token := range []string{"", adminTestToken} {
		for _, req := range adminEveryPath {
			t.Run(fmt.Sprintf("token=%t %s %s", token != "", req.method, req.path), func(t *testing.T) {
				f := newAdminFixture(token)
				if token != "" {
					req.auth = "bearer  " + token + " "
				}
				w := f.do(t, req)
				want := http.StatusOK
				if req.path == "/no/such/route" {
					want = http.StatusNotFound
				}
				if w.Code != want {
					t.Fatalf("status %d, want %d; body %.200s", w.Code, want, w.Body)
				}
				if line := f.audit(t); line["status"] != float64(want) {
					t.Errorf("audit line %v", line)
				}
			})
		}
	}
}

func TestAdminNoTokenIgnoresAuthorization(t *testing.T) {
	f := newAdminFixture("")
	w := f.do(t, adminReq{method: "GET", path: "/admin/cluster", auth: "Bearer anything"})
	if w.Code != http.StatusOK {
		t.Errorf("status %d", w.Code)
	}
}

func TestAdminSecretsNeverLogged(t *testing.T) {
	f := newAdminFixture(adminTestToken)
	const bodyMarker = "body-only-marker-7c1e"
	const wrongToken = "wrong-token-marker-99a0"
	reqs := []adminReq{
		{method: "POST", path: "/admin/cache/warmup", body: `{"user_ids":["` + bodyMarker + `"]}`, auth: adminBearer},
		{method: "POST", path: "/admin/cache/warmup", body: `{"user_ids":["` + bodyMarker + `"], "x": 1}`, auth: adminBearer},
		{method: "POST", path: "/admin/cache/warmup", body: `{"` + bodyMarker + ``, auth: adminBearer},
		{method: "POST", path: "/admin/cache/warmup", body: `{"user_ids":["` + bodyMarker + `"]}`, auth: "Bearer " + wrongToken},
		{method: "GET", path: "/admin/cluster", auth: "Bearer " + wrongToken},
		{method: "GET", path: "/debug/pprof/cmdline", auth: adminBearer},
	}
	for _, req := range reqs {
		f.do(t, req)
	}
	raw := f.log.take()
	for _, secret := range []string{adminTestToken, wrongToken, bodyMarker} {
		if strings.Contains(raw, secret) {
			t.Errorf("%q is in the log: %s", secret, raw)
		}
	}
	if n := strings.Count(strings.TrimSpace(raw), "\n") + 1; n != len(reqs) {
		t.Errorf("%d audit lines for %d calls", n, len(reqs))
	}
}

func TestAdminBadInput(t *testing.T) {
	tooMany := `{"user_ids":[` + strings.TrimSuffix(strings.Repeat(`"u",`, adminMaxWarmup+1), ",") + `]}`
	huge := `{"user_ids":["` + strings.Repeat("u", MaxBodyBytes) + `"]}`
	cases := []struct {
		name   string
		req    adminReq
		status int
		code   string
	}{
		{"warmup invalid JSON", adminReq{method: "POST", path: "/admin/cache/warmup", body: `{"user_ids":[`}, 400, "invalid_argument"},
		{"warmup not JSON", adminReq{method: "POST", path: "/admin/cache/warmup", body: `hello`}, 400, "invalid_argument"},
		{"warmup unknown field", adminReq{method: "POST", path: "/admin/cache/warmup", body: `{"recent":1,"force":true}`}, 400, "invalid_argument"},
		{"warmup ids wrong type", adminReq{method: "POST", path: "/admin/cache/warmup", body: `{"user_ids":"u1"}`}, 400, "invalid_argument"},
		{"warmup id wrong type", adminReq{method: "POST", path: "/admin/cache/warmup", body: `{"user_ids":[1]}`}, 400, "invalid_argument"},
		{"warmup recent string", adminReq{method: "POST", path: "/admin/cache/warmup", body: `{"recent":"5"}`}, 400, "invalid_argument"},
		{"warmup recent fraction", adminReq{method: "POST", path: "/admin/cache/warmup", body: `{"recent":1.5}`}, 400, "invalid_argument"},
		{"warmup recent overflow", adminReq{method: "POST", path: "/admin/cache/warmup", body: `{"recent":1e40}`}, 400, "invalid_argument"},
		{"warmup both", adminReq{method: "POST", path: "/admin/cache/warmup", body: `{"user_ids":["u1"],"recent":5}`}, 400, "invalid_argument"},
		{"warmup neither", adminReq{method: "POST", path: "/admin/cache/warmup", body: `{}`}, 400, "invalid_argument"},
		{"warmup nulls", adminReq{method: "POST", path: "/admin/cache/warmup", body: `{"user_ids":null,"recent":null}`}, 400, "invalid_argument"},
		{"warmup recent 0", adminReq{method: "POST", path: "/admin/cache/warmup", body: `{"recent":0}`}, 400, "invalid_argument"},
		{"warmup recent negative", adminReq{method: "POST", path: "/admin/cache/warmup", body: `{"recent":-1}`}, 400, "invalid_argument"},
		{"warmup recent too big", adminReq{method: "POST", path: "/admin/cache/warmup", body: `{"recent":10001}`}, 400, "invalid_argument"},
		{"warmup no ids", adminReq{method: "POST", path: "/admin/cache/warmup", body: `{"user_ids":[]}`}, 400, "invalid_argument"},
		{"warmup empty id", adminReq{method: "POST", path: "/admin/cache/warmup", body: `{"user_ids":["u1",""]}`}, 400, "invalid_argument"},
		{"warmup blank id", adminReq{method: "POST", path: "/admin/cache/warmup", body: `{"user_ids":[" "]}`}, 400, "invalid_argument"},
		{"warmup too many ids", adminReq{method: "POST", path: "/admin/cache/warmup", body: tooMany}, 400, "invalid_argument"},
		{"warmup trailing data", adminReq{method: "POST", path: "/admin/cache/warmup", body: `{"recent":1}{}`}, 400, "invalid_argument"},
		{"warmup array", adminReq{method: "POST", path: "/admin/cache/warmup", body: `[1]`}, 400, "invalid_argument"},
		{"warmup empty body", adminReq{method: "POST", path: "/admin/cache/warmup"}, 400, "invalid_argument"},
		{"warmup content type", adminReq{method: "POST", path: "/admin/cache/warmup", body: `{"recent":1}`, header: map[string]string{"Content-Type": "text/plain"}}, 400, "invalid_argument"},
		{"warmup oversized", adminReq{method: "POST", path: "/admin/cache/warmup", body: huge}, 413, "body_too_large"},
		{"preload unknown field", adminReq{method: "POST", path: "/admin/jwks/preload", body: `{"issuer":"x"}`}, 400, "invalid_argument"},
		{"preload invalid JSON", adminReq{method: "POST", path: "/admin/jwks/preload", body: `{`}, 400, "invalid_argument"},
		{"preload array", adminReq{method: "POST", path: "/admin/jwks/preload", body: `[]`}, 400, "invalid_argument"},
		{"preload blank body", adminReq{method: "POST", path: "/admin/jwks/preload", body: ` `}, 400, "invalid_argument"},
		{"preload oversized", adminReq{method: "POST", path: "/admin/jwks/preload", body: huge}, 413, "body_too_large"},
		{"drop empty user", adminReq{method: "DELETE", path: "/admin/cache/user/"}, 400, "invalid_argument"},
		{"drop blank user", adminReq{method: "DELETE", path: "/admin/cache/user/%20"}, 400, "invalid_argument"},
		{"drop user subpath", adminReq{method: "DELETE", path: "/admin/cache/user/a/b"}, 404, "not_found"},
		{"warmup GET", adminReq{method: "GET", path: "/admin/cache/warmup"}, 405, "method_not_allowed"},
		{"preload PUT", adminReq{method: "PUT", path: "/admin/jwks/preload"}, 405, "method_not_allowed"},
		{"drop user GET", adminReq{method: "GET", path: "/admin/cache/user/u1"}, 405, "method_not_allowed"},
		{"drop all POST", adminReq{method: "POST", path: "/admin/cache/all"}, 405, "method_not_allowed"},
		{"cluster DELETE", adminReq{method: "DELETE", path: "/admin/cluster"}, 405, "method_not_allowed"},
		{"unknown admin path", adminReq{method: "GET", path: "/admin/nope"}, 404, "not_found"},
		{"root", adminReq{method: "GET", path: "/"}, 404, "not_found"},
		{"v1 path", adminReq{method: "POST", path: "/v1/validate"}, 404, "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newAdminFixture(adminTestToken)
			tc.req.auth = adminBearer
			w := f.do(t, tc.req)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d; body %s", w.Code, tc.status, w.Body)
			}
			if code := adminErrorCode(t, w); code != tc.code {
				t.Errorf("code %q, want %q", code, tc.code)
			}
			if tc.status == 405 && w.Header().Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			if calls := f.fa.callList(); len(calls) != 0 {
				t.Errorf("Admin called: %v", calls)
			}
			line := f.audit(t)
			if line["status"] != float64(tc.status) || line["outcome"] != tc.code || line["level"] != "WARN" {
				t.Errorf("audit line %v", line)
			}
		})
	}
}

func TestAdminAllowHeader(t *testing.T) {
	f := newAdminFixture("")
	for path, want := range map[string]string{
		"/admin/cache/warmup": "POST",
		"/admin/cluster":      "GET, HEAD",
		"/admin/cache/all":    "DELETE",
	} {
		w := f.do(t, adminReq{method: "PATCH", path: path})
		if got := w.Header().Get("Allow"); got != want {
			t.Errorf("%s: Allow %q, want %q", path, got, want)
		}
	}
}

func TestAdminServiceErrors(t *testing.T) {
	const detail = "internal detail 6b2e"
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("%w: user id too long", auth.ErrInvalidInput), 400, "invalid_argument"},
		{fmt.Errorf("warming: %w", auth.ErrUnavailable), 503, "unavailable"},
		{fmt.Errorf("warming: %w", context.DeadlineExceeded), 504, "deadline_exceeded"},
		{context.Canceled, 499, "canceled"},
		{errors.New(detail), 500, "internal"},
	}
	routes := []adminReq{
		{method: "POST", path: "/admin/cache/warmup", body: `{"recent":1}`},
		{method: "POST", path: "/admin/jwks/preload"},
		{method: "DELETE", path: "/admin/cache/user/u1"},
		{method: "DELETE", path: "/admin/cache/all"},
	}
	for _, tc := range cases {
		for _, req := range routes {
			t.Run(tc.code+" "+req.path, func(t *testing.T) {
				f := newAdminFixture(adminTestToken)
				f.fa.err = tc.err
				req.auth = adminBearer
				w := f.do(t, req)
				if w.Code != tc.status {
					t.Fatalf("status %d, want %d; body %s", w.Code, tc.status, w.Body)
				}
				if code := adminErrorCode(t, w); code != tc.code {
					t.Errorf("code %q, want %q", code, tc.code)
				}
				if tc.status != 400 && strings.Contains(w.Body.String(), tc.err.Error()) {
					t.Errorf("the error text is in the response: %s", w.Body)
				}
				if strings.Contains(w.Body.String(), detail) {
					t.Errorf("the error detail is in the response: %s", w.Body)
				}
				line := f.audit(t)
				if line["status"] != float64(tc.status) || line["outcome"] != tc.code || line["error"] != tc.err.Error() {
					t.Errorf("audit line %v", line)
				}
				if tc.status >= 500 && line["level"] != "ERROR" {
					t.Errorf("level %v, want ERROR", line["level"])
				}
			})
		}
	}
}

func TestAdminPanicIsOneAuditLineAnd500(t *testing.T) {
	f := newAdminFixture(adminTestToken)
	f.fa.panics = "cluster info exploded"
	w := f.do(t, adminReq{method: "GET", path: "/admin/cluster", auth: adminBearer})
	if w.Code != http.StatusInternalServerError || adminErrorCode(t, w) != "internal" {
		t.Fatalf("status %d, body %s", w.Code, w.Body)
	}
	line := f.audit(t)
	if line["outcome"] != "panic" || line["status"] != 500.0 || line["level"] != "ERROR" {
		t.Errorf("audit line %v", line)
	}
	if p, _ := line["panic"].(string); !strings.Contains(p, "cluster info exploded") {
		t.Errorf("panic attribute %q", p)
	}
}

func TestAdminAbortPanicPassesThroughAfterOneAuditLine(t *testing.T) {
	f := newAdminFixture("")
	f.fa.panics = http.ErrAbortHandler
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler { //nolint:errorlint // the exact sentinel is the contract
				t.Errorf("recovered %v, want http.ErrAbortHandler", p)
			}
		}()
		f.do(t, adminReq{method: "GET", path: "/admin/cluster"})
	}()
	if line := f.audit(t); line["outcome"] != "aborted" {
		t.Errorf("audit line %v", line)
	}
}

var adminHexID = regexp.MustCompile(`^[0-9a-f]{16}$`)

func TestAdminRequestID(t *testing.T) {
	longest := strings.Repeat("r", maxRequestID)
	cases := []struct {
		name, header string
		echoed       bool
	}{
		{"sane", "req-123 abc/XYZ:~", true},
		{"max length", longest, true},
		{"missing", "", false},
		{"too long", longest + "r", false},
		{"control char", "abc\x01def", false},
		{"DEL", "abc\x7f", false},
		{"non-ASCII", "réq", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, auth := range []string{adminBearer, ""} { // accepted and refused calls alike
				f := newAdminFixture(adminTestToken)
				req := adminReq{method: "GET", path: "/admin/cluster", auth: auth}
				if tc.header != "" {
					req.header = map[string]string{"X-Request-Id": tc.header}
				}
				w := f.do(t, req)
				got := w.Header().Get("X-Request-Id")
				if tc.echoed && got != tc.header {
					t.Errorf("X-Request-Id %q, want %q", got, tc.header)
				}
				if !tc.echoed && !adminHexID.MatchString(got) {
					t.Errorf("X-Request-Id %q, want 16 hex characters", got)
				}
				if line := f.audit(t); line["request_id"] != got {
					t.Errorf("audit request_id %v, response %q", line["request_id"], got)
				}
			}
		})
	}
}

func TestAdminGeneratedRequestIDsDiffer(t *testing.T) {
	f := newAdminFixture("")
	seen := map[string]bool{}
	for range 50 {
		id := f.do(t, adminReq{method: "GET", path: "/admin/cluster"}).Header().Get("X-Request-Id")
		if seen[id] {
			t.Fatalf("request id %q repeated", id)
		}
		seen[id] = true
	}
}

func TestAdminNilLoggerDiscards(t *testing.T) {
	h := AdminHTTP(&fakeAdmin{}, AdminConfig{})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("DELETE", "/admin/cache/all", nil))
	if w.Code != http.StatusOK {
		t.Errorf("status %d", w.Code)
	}
}

func TestAdminOverHTTP(t *testing.T) {
	f := newAdminFixture(adminTestToken)
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	req, err := http.NewRequest("DELETE", srv.URL+"/admin/cache/user/bob", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", adminBearer)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"acknowledged":2,"members":3}` {
		t.Fatalf("status %d, body %s", resp.StatusCode, body)
	}
	line := f.audit(t)
	if addr, _ := line["remote_addr"].(string); !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("remote_addr %q", addr)
	}
	if line["user_id"] != "bob" || line["path"] != "/admin/cache/user/{user_id}" {
		t.Errorf("audit line %v", line)
	}
	if d, _ := line["duration"].(float64); d <= 0 {
		t.Errorf("duration %v", line["duration"])
	}
}
