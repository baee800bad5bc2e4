package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/avion/authnode/auth"
)

// Session bounds, for both public APIs: auth's, checked here first so a
// bad request is refused before it reaches the service.
const (
	maxSessionTTL   = auth.MaxSessionTTL
	maxSessionBytes = auth.MaxSessionBytes
)

// maxRevokeSkew is how far in the future a revocation time may lie: a
// watermark never moves back, so a far-future one would lock a user out
// for good.
const maxRevokeSkew = time.Minute

// publicAPI serves Service over HTTP/JSON and gRPC.
type publicAPI struct {
	svc   Service
	guard Guard
	now   func() time.Time
}

// PublicHTTP returns the public HTTP/JSON API over svc:
//
//	POST   /v1/tokens/validate           {"token"} or Authorization: Bearer
//	POST   /v1/tokens/revoke             {"user_id", "before"?}      (mutation)
//	POST   /v1/authorize                 {"user_id", "resource", "action", "conditions"?}
//	POST   /v1/apikeys/verify            {"api_key"}
//	GET    /v1/sessions/{user_id}
//	PUT    /v1/sessions/{user_id}        {"data", "expires_at" | "ttl_seconds"} (mutation)
//	DELETE /v1/sessions/{user_id}                                     (mutation)
//	POST   /v1/users/{user_id}/invalidate                             (mutation)
//
// Mutations need a bearer token that mutations accepts (see Guard). Every
// answer is JSON except 204. An invalid token or API key is 401 with
// {"valid": false, "error": {"code", "message"}}; a deny is 200 with
// "allowed": false. Bad input is 400 (413 for a body over MaxBodyBytes),
// an unknown path 404, a wrong method 405, all with {"error": {"code",
// "message"}}. Service errors: invalid input 400, unavailable 503,
// deadline 504, canceled 503 "canceled" (a caller that gave up reads
// nothing; one still waiting may retry), anything else 500 with a fixed
// message. No answer ever carries a token, an API key or session data the
// caller did not ask for.
func PublicHTTP(svc Service, mutations Guard) http.Handler {
	return newPublicAPI(svc, mutations, time.Now).handler()
}

func newPublicAPI(svc Service, mutations Guard, now func() time.Time) *publicAPI {
	return &publicAPI{svc: svc, guard: mutations, now: now}
}

// route is one path of the API and its handler per method.
type route struct {
	path    string
	methods map[string]http.HandlerFunc
}

func (a *publicAPI) routes() []route {
	return []route{
		{"/v1/tokens/validate", map[string]http.HandlerFunc{http.MethodPost: a.validateToken}},
		{"/v1/tokens/revoke", map[string]http.HandlerFunc{http.MethodPost: a.mutation(a.revokeTokens)}},
		{"/v1/authorize", map[string]http.HandlerFunc{http.MethodPost: a.authorize}},
		{"/v1/apikeys/verify", map[string]http.HandlerFunc{http.MethodPost: a.verifyAPIKey}},
		{"/v1/sessions/{user_id}", map[string]http.HandlerFunc{
			http.MethodGet:    a.getSession,
			http.MethodPut:    a.mutation(a.putSession),
			http.MethodDelete: a.mutation(a.deleteSession),
		}},
		{"/v1/users/{user_id}/invalidate", map[string]http.HandlerFunc{http.MethodPost: a.mutation(a.invalidateUser)}},
	}
}

// handler builds the mux: each method of each route, a 405 for the other
// methods of a known path, a 404 for everything else.
func (a *publicAPI) handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range a.routes() {
		allowed := make([]string, 0, len(rt.methods)+1)
		for method, h := range rt.methods {
			mux.HandleFunc(method+" "+rt.path, h)
			allowed = append(allowed, method)
			if method == http.MethodGet {
				allowed = append(allowed, http.MethodHead)
			}
		}
		slices.Sort(allowed)
		mux.HandleFunc(rt.path, methodNotAllowed(strings.Join(allowed, ", ")))
	}
	mux.HandleFunc("/", notFound)
	return canonicalPaths(mux)
}

// canonicalPaths answers 404 for a path ServeMux would redirect (double
// slashes, dot segments, a trailing slash), so every answer is JSON.
func canonicalPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == "" || p[0] != '/' || path.Clean(p) != p {
			notFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	writeError(w, http.StatusNotFound, "not_found", "no such route")
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed; allowed: "+allow)
	}
}

// mutation runs h only for a caller the guard lets through; the guard runs
// before the body is read. The call gets a request id (see RequestID).
func (a *publicAPI) mutation(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r = withHTTPRequestID(w, r)
		if a.guard.checkHTTP(w, r) {
			h(w, r)
		}
	}
}

// Request and response bodies.
type (
	validateRequest struct {
		Token string `json:"token"`
	}
	tokenValid struct {
		Valid     bool            `json:"valid"`
		UserID    string          `json:"user_id"`
		Scopes    []string        `json:"scopes"`
		ExpiresAt string          `json:"expires_at,omitempty"`
		TokenType string          `json:"token_type"`
		Metadata  json.RawMessage `json:"metadata"`
	}
	// rejected is the answer for a token or API key that is not accepted.
	rejected struct {
		Valid bool     `json:"valid"`
		Error apiError `json:"error"`
	}
	revokeRequest struct {
		UserID string `json:"user_id"`
		Before string `json:"before"`
	}
	revokeResponse struct {
		Acks
		Watermark string `json:"watermark"`
	}
	authorizeRequest struct {
		UserID     string            `json:"user_id"`
		Resource   string            `json:"resource"`
		Action     string            `json:"action"`
		Conditions map[string]string `json:"conditions"`
	}
	authorizeResponse struct {
		Allowed  bool   `json:"allowed"`
		UserID   string `json:"user_id"`
		Resource string `json:"resource"`
		Action   string `json:"action"`
	}
	verifyKeyRequest struct {
		APIKey string `json:"api_key"`
	}
	keyValid struct {
		Valid     bool     `json:"valid"`
		UserID    string   `json:"user_id"`
		Name      string   `json:"name"`
		Scopes    []string `json:"scopes"`
		ExpiresAt string   `json:"expires_at,omitempty"` // omitted: never expires
	}
	sessionResponse struct {
		UserID    string          `json:"user_id"`
		Data      json.RawMessage `json:"data"`
		ExpiresAt string          `json:"expires_at"`
	}
	putSessionRequest struct {
		Data       json.RawMessage `json:"data"`
		ExpiresAt  *string         `json:"expires_at"`
		TTLSeconds *int64          `json:"ttl_seconds"`
	}
	putSessionResponse struct {
		UserID    string `json:"user_id"`
		ExpiresAt string `json:"expires_at"`
	}
	// emptyRequest is a body that may be absent or {}.
	emptyRequest struct{}
)

// validateToken takes the token from the body when it names one, else from
// the Authorization: Bearer header; the body may be empty then.
func (a *publicAPI) validateToken(w http.ResponseWriter, r *http.Request) {
	var req validateRequest
	if !decodeOptional(w, r, &req) {
		return
	}
	token := req.Token
	if token == "" {
		token, _ = bearerToken(r.Header)
	}
	if token == "" {
		writeHTTPError(w, badInput("token is required, in the body or an Authorization: Bearer header"))
		return
	}
	claims, err := a.svc.ValidateToken(r.Context(), token)
	if rej, ok := tokenRejection(err); ok {
		writeJSON(w, http.StatusUnauthorized, rejected{Error: rej})
		return
	}
	if err != nil {
		writeHTTPError(w, err)
		return
	}
	meta, err := metadataJSON(claims.Metadata)
	if err != nil {
		writeHTTPError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, tokenValid{
		Valid:     true,
		UserID:    claims.UserID,
		Scopes:    nonNil(claims.Scopes),
		ExpiresAt: formatTime(claims.ExpiresAt),
		TokenType: claims.TokenType,
		Metadata:  meta,
	})
}

func (a *publicAPI) revokeTokens(w http.ResponseWriter, r *http.Request) {
	var req revokeRequest
	if !decode(w, r, &req) {
		return
	}
	before, err := a.revokeBefore(req)
	if err != nil {
		writeHTTPError(w, err)
		return
	}
	rev, err := a.svc.RevokeTokens(r.Context(), req.UserID, before)
	if err != nil {
		writeHTTPError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, revokeResponse{Acks: rev.Acks, Watermark: formatTime(rev.Watermark)})
}

// revokeBefore checks a revocation request and returns its time (zero: the
// service uses now).
func (a *publicAPI) revokeBefore(req revokeRequest) (time.Time, error) {
	if err := required(field{"user_id", req.UserID}); err != nil {
		return time.Time{}, err
	}
	if req.Before == "" {
		return time.Time{}, nil
	}
	before, err := parseTime("before", req.Before)
	if err != nil {
		return time.Time{}, err
	}
	return before, checkRevokeBefore(a.now(), before)
}

func (a *publicAPI) authorize(w http.ResponseWriter, r *http.Request) {
	var req authorizeRequest
	if !decode(w, r, &req) {
		return
	}
	if err := required(field{"user_id", req.UserID}, field{"resource", req.Resource}, field{"action", req.Action}); err != nil {
		writeHTTPError(w, err)
		return
	}
	allowed, err := a.svc.Authorize(r.Context(), req.UserID, req.Resource, req.Action, req.Conditions)
	if err != nil {
		writeHTTPError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, authorizeResponse{Allowed: allowed, UserID: req.UserID, Resource: req.Resource, Action: req.Action})
}

func (a *publicAPI) verifyAPIKey(w http.ResponseWriter, r *http.Request) {
	var req verifyKeyRequest
	if !decode(w, r, &req) {
		return
	}
	if err := required(field{"api_key", req.APIKey}); err != nil {
		writeHTTPError(w, err)
		return
	}
	info, err := a.svc.VerifyAPIKey(r.Context(), req.APIKey)
	if rej, ok := keyRejection(err); ok {
		writeJSON(w, http.StatusUnauthorized, rejected{Error: rej})
		return
	}
	if err != nil {
		writeHTTPError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, keyValid{
		Valid:     true,
		UserID:    info.UserID,
		Name:      info.Name,
		Scopes:    nonNil(info.Scopes),
		ExpiresAt: formatTime(info.ExpiresAt),
	})
}

func (a *publicAPI) getSession(w http.ResponseWriter, r *http.Request) {
	userID := r.PathValue("user_id")
	if err := required(field{"user_id", userID}); err != nil {
		writeHTTPError(w, err)
		return
	}
	s, err := a.svc.GetSession(r.Context(), userID)
	if err == nil && s.Found {
		err = checkStoredData(s.Data)
	}
	switch {
	case err != nil:
		writeHTTPError(w, err)
	case !s.Found:
		writeError(w, http.StatusNotFound, "not_found", "no session for this user")
	default:
		writeJSON(w, http.StatusOK, sessionResponse{UserID: userID, Data: s.Data, ExpiresAt: formatTime(s.ExpiresAt)})
	}
}

func (a *publicAPI) putSession(w http.ResponseWriter, r *http.Request) {
	userID := r.PathValue("user_id")
	var req putSessionRequest
	if !decode(w, r, &req) {
		return
	}
	data, expiresAt, err := a.checkPutSession(userID, req)
	if err != nil {
		writeHTTPError(w, err)
		return
	}
	if err := a.svc.PutSession(r.Context(), userID, data, expiresAt); err != nil {
		writeHTTPError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, putSessionResponse{UserID: userID, ExpiresAt: formatTime(expiresAt)})
}

// checkPutSession checks a PUT body and returns the data to store and its
// expiry.
func (a *publicAPI) checkPutSession(userID string, req putSessionRequest) (json.RawMessage, time.Time, error) {
	if err := required(field{"user_id", userID}); err != nil {
		return nil, time.Time{}, err
	}
	data, err := sessionData(req.Data)
	if err != nil {
		return nil, time.Time{}, err
	}
	var at *time.Time
	if req.ExpiresAt != nil {
		t, err := parseTime("expires_at", *req.ExpiresAt)
		if err != nil {
			return nil, time.Time{}, err
		}
		at = &t
	}
	expiresAt, err := sessionExpiry(a.now(), at, req.TTLSeconds)
	return data, expiresAt, err
}

func (a *publicAPI) deleteSession(w http.ResponseWriter, r *http.Request) {
	userID := r.PathValue("user_id")
	if err := required(field{"user_id", userID}); err != nil {
		writeHTTPError(w, err)
		return
	}
	if err := a.svc.DeleteSession(r.Context(), userID); err != nil {
		writeHTTPError(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// invalidateUser takes no body, or an empty JSON object.
func (a *publicAPI) invalidateUser(w http.ResponseWriter, r *http.Request) {
	userID := r.PathValue("user_id")
	if !decodeOptional(w, r, &emptyRequest{}) {
		return
	}
	if err := required(field{"user_id", userID}); err != nil {
		writeHTTPError(w, err)
		return
	}
	acks, err := a.svc.InvalidateUser(r.Context(), userID)
	if err != nil {
		writeHTTPError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, acks)
}

// decode decodes r's JSON body into v with decodeBody. On failure it has
// answered 413 (too large) or 400 and returns false.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	return decoded(w, decodeBody(r, v))
}

// decoded answers a decoding error: 413 (too large) or 400, and returns
// false; or returns true when there is none.
func decoded(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, errBodyTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large",
			"request body larger than "+strconv.Itoa(MaxBodyBytes)+" bytes")
	default:
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
	}
	return false
}

// decodeOptional is decode for a body that may be absent: an empty body
// leaves v as it is.
func decodeOptional(w http.ResponseWriter, r *http.Request, v any) bool {
	return decoded(w, decodeOptionalBody(r, v))
}

// writeHTTPError answers err: a badInput with its message, a Service error
// as classify sorts it, with a fixed message.
func writeHTTPError(w http.ResponseWriter, err error) {
	var bad badInput
	if errors.As(err, &bad) {
		writeError(w, http.StatusBadRequest, "invalid_request", string(bad))
		return
	}
	switch classify(err) {
	case errInvalid:
		writeError(w, http.StatusBadRequest, "invalid_request", invalidMessage(err))
	case errUnavailable:
		writeError(w, http.StatusServiceUnavailable, "unavailable", msgUnavailable)
	case errDeadline:
		writeError(w, http.StatusGatewayTimeout, "deadline_exceeded", "deadline exceeded")
	case errCanceled:
		writeError(w, http.StatusServiceUnavailable, "canceled", "request canceled")
	default:
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
	}
}

// msgUnavailable is the message of an unavailable answer (503 /
// Unavailable).
const msgUnavailable = "the source of truth is unavailable and nothing usable is cached; retry later"

// The request checks and conversions below are shared by both public APIs.

// badInput is a request the API refuses before calling the Service (400 /
// InvalidArgument). Its message names the problem and never quotes input.
type badInput string

func (e badInput) Error() string { return string(e) }

// field is a named request value for required.
type field struct{ name, value string }

// required returns a badInput naming the first empty field.
func required(fields ...field) error {
	for _, f := range fields {
		if f.value == "" {
			return badInput(f.name + " is required")
		}
	}
	return nil
}

// parseTime parses an RFC 3339 time of the field name.
func parseTime(name, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, badInput(name + " must be an RFC 3339 time")
	}
	return t, nil
}

// checkRevokeBefore refuses a revocation time further than maxRevokeSkew in
// the future.
func checkRevokeBefore(now, before time.Time) error {
	if before.After(now.Add(maxRevokeSkew)) {
		return badInput("before must not be in the future")
	}
	return nil
}

// sessionData checks session data to store: a JSON object of at most
// maxSessionBytes once compacted. It returns the object compacted.
func sessionData(raw []byte) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0:
		return nil, badInput("data is required")
	case raw[0] != '{' || !json.Valid(raw):
		return nil, badInput("data must be a JSON object")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, badInput("data must be a JSON object")
	}
	if buf.Len() > maxSessionBytes {
		return nil, badInput("data is larger than " + strconv.Itoa(maxSessionBytes) + " bytes")
	}
	return buf.Bytes(), nil
}

// sessionExpiry returns the expiry of a session stored at now from exactly
// one of expiresAt and ttlSeconds. It must be in the future and at most
// maxSessionTTL away.
func sessionExpiry(now time.Time, expiresAt *time.Time, ttlSeconds *int64) (time.Time, error) {
	maxSeconds := int64(maxSessionTTL / time.Second)
	switch {
	case (expiresAt == nil) == (ttlSeconds == nil):
		return time.Time{}, badInput("exactly one of expires_at and ttl_seconds is required")
	case ttlSeconds != nil && (*ttlSeconds <= 0 || *ttlSeconds > maxSeconds):
		return time.Time{}, badInput("ttl_seconds must be between 1 and " + strconv.FormatInt(maxSeconds, 10))
	case ttlSeconds != nil:
		return now.Add(time.Duration(*ttlSeconds) * time.Second), nil
	case !expiresAt.After(now):
		return time.Time{}, badInput("expires_at must be in the future")
	case expiresAt.After(now.Add(maxSessionTTL)):
		return time.Time{}, badInput("expires_at must be at most " + strconv.FormatInt(maxSeconds, 10) + " seconds away")
	}
	return *expiresAt, nil
}

// checkStoredData makes sure session data read back is a JSON value that
// can be sent; anything else is an internal error.
func checkStoredData(data json.RawMessage) error {
	if !json.Valid(data) {
		return errors.New("transport: stored session data is not JSON")
	}
	return nil
}

// tokenRejection returns the API error for an invalid token: ok is false
// when err is not an *auth.TokenError.
func tokenRejection(err error) (apiError, bool) {
	var te *auth.TokenError
	if !errors.As(err, &te) {
		return apiError{}, false
	}
	return apiError{Code: te.Code, Message: te.Reason}, true
}

// keyRejection returns the API error for an API key that is not accepted:
// ok is false when err is not an *auth.KeyError.
func keyRejection(err error) (apiError, bool) {
	var ke *auth.KeyError
	if !errors.As(err, &ke) {
		return apiError{}, false
	}
	return apiError{Code: ke.Code, Message: "api key not accepted: " + ke.Code}, true
}

// metadataJSON encodes token metadata as a JSON object ({} when empty).
func metadataJSON(m map[string]any) (json.RawMessage, error) {
	if len(m) == 0 {
		return json.RawMessage("{}"), nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, errors.New("transport: token metadata is not encodable")
	}
	return b, nil
}

// formatTime formats t as RFC 3339 in UTC; the zero time is "".
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// nonNil returns s, or an empty slice for nil, so JSON shows [].
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
