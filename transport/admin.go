package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"strings"
	"time"
)

// AdminConfig configures AdminHTTP.
type AdminConfig struct {
	// Token is the set of bearer tokens the admin API accepts on every
	// route, pprof included. An empty set means no token is required at
	// all: AdminHTTP does not know which listener it is served on, so the
	// caller must only serve it without a token on a loopback listener
	// (the node checks this before it starts the admin listener).
	Token Tokens
	// Logger receives the audit log: exactly one line per call. Nil
	// discards it.
	Logger *slog.Logger
}

// Admin API limits.
const (
	// adminMaxWarmup bounds both the user ids and the recent count of one
	// warmup call.
	adminMaxWarmup = 10000
)

// Error codes of the admin API's JSON error bodies.
const (
	adminCodeUnauthenticated  = "unauthenticated"
	adminCodeInvalid          = "invalid_argument"
	adminCodeTooLarge         = "body_too_large"
	adminCodeNotFound         = "not_found"
	adminCodeMethodNotAllowed = "method_not_allowed"
	adminCodeUnavailable      = "unavailable"
	adminCodeDeadline         = "deadline_exceeded"
	adminCodeCanceled         = "canceled"
	adminCodeInternal         = "internal"
)

// adminStatusCanceled answers a call whose caller gave up (the client
// closed the request), as gRPC-to-HTTP mappings do.
const adminStatusCanceled = 499

// AdminHTTP returns the handler of the admin listener, serving adm:
//
//	POST   /admin/cache/warmup            {"user_ids": [...]} or {"recent": N} -> {"loaded": n}
//	POST   /admin/jwks/preload            empty body or {} -> {"issuers": {"<iss>": keys}}
//	DELETE /admin/cache/user/{user_id}    -> {"acknowledged": a, "members": m}
//	DELETE /admin/cache/all               -> {"acknowledged": a, "members": m}
//	GET    /admin/cluster                 -> ClusterInfo
//	       /debug/pprof/...               net/http/pprof
//
// With cfg.Token set, every request needs "Authorization: Bearer <token>"
// with an accepted token, or it is answered 401 before it is routed. Every
// request, refused or failed ones included, writes one audit line (see
// AdminConfig.Logger) and gets an X-Request-Id response header. Every error
// is the JSON error body; bad input is a 4xx, never a 500.
//
// The pprof handlers are registered on the returned handler's own mux.
// Importing net/http/pprof also registers them on http.DefaultServeMux (its
// init does that, unconditionally), so no listener of the process may
// serve http.DefaultServeMux.
func AdminHTTP(adm Admin, cfg AdminConfig) http.Handler {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &adminHandler{mux: adminMux(adm), token: cfg.Token, log: logger}
}

// adminRoute is one admin API route: method and ServeMux path pattern.
type adminRoute struct {
	method, path string
	handler      http.HandlerFunc
}

// adminMux routes the admin API and pprof on a mux of its own. A known path
// with another method is a JSON 405 with Allow; an unknown path a JSON 404.
func adminMux(adm Admin) *http.ServeMux {
	mux := http.NewServeMux()
	routes := []adminRoute{
		{http.MethodPost, "/admin/cache/warmup", adminWarmup(adm)},
		{http.MethodPost, "/admin/jwks/preload", adminPreloadJWKS(adm)},
		{http.MethodDelete, "/admin/cache/user/{user_id}", adminDropUser(adm)},
		{http.MethodDelete, "/admin/cache/user/{$}", adminDropUser(adm)},
		{http.MethodDelete, "/admin/cache/all", adminDropAll(adm)},
		{http.MethodGet, "/admin/cluster", adminCluster(adm)},
	}
	for _, rt := range routes {
		allow := rt.method
		if allow == http.MethodGet {
			allow += ", " + http.MethodHead
		}
		mux.Handle(rt.method+" "+rt.path, rt.handler)
		mux.Handle(rt.path, adminMethodNotAllowed(allow))
	}
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/", adminNotFound)
	return mux
}

// adminHandler authenticates, routes and audits every admin request.
type adminHandler struct {
	mux   *http.ServeMux
	token Tokens
	log   *slog.Logger
}

// ServeHTTP checks the token, serves r through the mux and writes the
// audit line, also when a handler panics: the panic is logged with its
// stack and the caller gets a 500 if nothing was written yet, except for
// http.ErrAbortHandler, which is passed on to net/http.
func (h *adminHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	r = withHTTPRequestID(w, r)
	id := RequestID(r.Context())
	sw := &adminStatusWriter{ResponseWriter: w}
	rec := &adminAudit{}
	_, pattern := h.mux.Handler(r)
	defer func() {
		p := recover()
		aborted := adminRecovered(p, sw, rec)
		h.audit(r, id, adminRoutePath(pattern), sw.code(), time.Since(start), rec)
		if aborted {
			panic(p) // net/http aborts the response quietly
		}
	}()
	if !h.authorized(r) {
		sw.Header().Set("WWW-Authenticate", "Bearer")
		rec.outcome = adminCodeUnauthenticated
		writeError(sw, http.StatusUnauthorized, adminCodeUnauthenticated, "a valid bearer token is required")
		return
	}
	h.mux.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), adminAuditKey{}, rec)))
}

// adminRecovered records a recovered panic value p (nil: none) in rec and
// answers a 500 when nothing was written yet. It reports whether p is
// http.ErrAbortHandler, the deliberate abort of a response, which is
// recorded as "aborted" and must be panicked on to net/http.
func adminRecovered(p any, sw *adminStatusWriter, rec *adminAudit) (aborted bool) {
	if p == nil {
		return false
	}
	if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
		rec.outcome = "aborted"
		return true
	}
	rec.outcome, rec.panic = "panic", fmt.Sprintf("%v\n%s", p, debug.Stack())
	if !sw.wrote {
		writeError(sw, http.StatusInternalServerError, adminCodeInternal, "internal error")
	}
	return false
}

// authorized reports whether r carries an accepted bearer token, or no
// token is configured.
func (h *adminHandler) authorized(r *http.Request) bool {
	if h.token.Empty() {
		return true
	}
	token, ok := bearerToken(r.Header)
	return ok && h.token.Accepts(token)
}

// audit writes the one audit line of a call: Info for a success, Warn for
// a 4xx or an aborted response, Error for a 5xx or a panic. It never logs the Authorization
// header or the body.
func (h *adminHandler) audit(r *http.Request, id, path string, status int, d time.Duration, rec *adminAudit) {
	attrs := []slog.Attr{
		slog.String("request_id", id),
		slog.String("method", r.Method),
		slog.String("path", path),
	}
	if rec.userID != "" {
		attrs = append(attrs, slog.String("user_id", rec.userID))
	}
	attrs = append(attrs,
		slog.String("remote_addr", r.RemoteAddr),
		slog.Int("status", status),
		slog.Duration("duration", d),
		slog.String("outcome", rec.outcomeFor(status)),
	)
	if rec.err != "" {
		attrs = append(attrs, slog.String("error", rec.err))
	}
	if rec.panic != "" {
		attrs = append(attrs, slog.String("panic", rec.panic))
	}
	level := slog.LevelInfo
	switch {
	case status >= 500 || rec.panic != "":
		level = slog.LevelError
	case status >= 400 || rec.outcome == "aborted":
		level = slog.LevelWarn
	}
	h.log.LogAttrs(context.WithoutCancel(r.Context()), level, "admin", attrs...)
}

// adminRoutePath is the path part of a ServeMux pattern ("DELETE
// /admin/cache/user/{user_id}" -> "/admin/cache/user/{user_id}"): the route,
// never the raw request path.
func adminRoutePath(pattern string) string {
	if _, path, ok := strings.Cut(pattern, " "); ok {
		return path
	}
	return pattern
}

// adminAudit is what a route handler adds to its call's audit line.
type adminAudit struct {
	userID  string // the user id of a per-user route
	outcome string // an error code; empty: derived from the status
	err     string // a service error, for the log only
	panic   string // a recovered panic and its stack
}

// adminAuditKey is the context key of a request's *adminAudit.
type adminAuditKey struct{}

// adminAuditOf returns r's audit record, or a throwaway one when r was not
// served through adminHandler.
func adminAuditOf(r *http.Request) *adminAudit {
	if rec, ok := r.Context().Value(adminAuditKey{}).(*adminAudit); ok {
		return rec
	}
	return &adminAudit{}
}

// outcomeFor is the audit outcome of a call answered with status: the
// recorded error code, else "ok" below 400 and "error" from 400.
func (a *adminAudit) outcomeFor(status int) string {
	switch {
	case a.outcome != "":
		return a.outcome
	case status < 400:
		return "ok"
	}
	return "error"
}

// adminStatusWriter remembers the status code written through it.
type adminStatusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

// code is the status the caller got: net/http answers 200 when a handler
// writes nothing.
func (w *adminStatusWriter) code() int {
	if !w.wrote {
		return http.StatusOK
	}
	return w.status
}

// WriteHeader records code and passes it on; only the first call counts.
func (w *adminStatusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write writes b, implying a 200 when no status was written yet.
func (w *adminStatusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *adminStatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// adminFail answers the error body and records code as the outcome.
func adminFail(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	adminAuditOf(r).outcome = code
	writeError(w, status, code, message)
}

// adminBadBody answers a decodeBody error: 413 for an oversized body, else
// 400 with decodeBody's description (which never quotes the body).
func adminBadBody(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errBodyTooLarge) {
		adminFail(w, r, http.StatusRequestEntityTooLarge, adminCodeTooLarge,
			fmt.Sprintf("request body over %d bytes", MaxBodyBytes))
		return
	}
	adminFail(w, r, http.StatusBadRequest, adminCodeInvalid, err.Error())
}

// adminServiceError answers an Admin error as classify sorts it. Only an
// invalid-input error's text reaches the caller (it describes the caller's
// input); any other error's text goes to the audit line only.
func adminServiceError(w http.ResponseWriter, r *http.Request, err error) {
	adminAuditOf(r).err = err.Error()
	switch classify(err) {
	case errInvalid:
		adminFail(w, r, http.StatusBadRequest, adminCodeInvalid, err.Error())
	case errUnavailable:
		adminFail(w, r, http.StatusServiceUnavailable, adminCodeUnavailable, "the source is unavailable")
	case errDeadline:
		adminFail(w, r, http.StatusGatewayTimeout, adminCodeDeadline, "the deadline passed")
	case errCanceled:
		adminFail(w, r, adminStatusCanceled, adminCodeCanceled, "the request was canceled")
	default:
		adminFail(w, r, http.StatusInternalServerError, adminCodeInternal, "internal error")
	}
}

// adminNotFound answers a path the admin API does not serve.
func adminNotFound(w http.ResponseWriter, r *http.Request) {
	adminFail(w, r, http.StatusNotFound, adminCodeNotFound, "no such admin route")
}

// adminMethodNotAllowed answers a known path called with a method other
// than allow.
func adminMethodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		adminFail(w, r, http.StatusMethodNotAllowed, adminCodeMethodNotAllowed, "method not allowed; use "+allow)
	}
}

// adminWarmupRequest is the body of POST /admin/cache/warmup. A JSON null
// counts as an absent field.
type adminWarmupRequest struct {
	UserIDs []string `json:"user_ids"`
	Recent  *int     `json:"recent"`
}

// check returns the Warmup arguments: exactly one of user_ids (1 to
// adminMaxWarmup non-blank ids) and recent (1 to adminMaxWarmup).
func (q *adminWarmupRequest) check() ([]string, int, error) {
	switch {
	case q.UserIDs != nil && q.Recent != nil:
		return nil, 0, errors.New("give user_ids or recent, not both")
	case q.Recent != nil:
		if *q.Recent < 1 || *q.Recent > adminMaxWarmup {
			return nil, 0, fmt.Errorf("recent must be in [1, %d]", adminMaxWarmup)
		}
		return nil, *q.Recent, nil
	case q.UserIDs == nil:
		return nil, 0, errors.New("give user_ids or recent")
	case len(q.UserIDs) == 0 || len(q.UserIDs) > adminMaxWarmup:
		return nil, 0, fmt.Errorf("user_ids must name 1 to %d users", adminMaxWarmup)
	}
	for i, id := range q.UserIDs {
		if strings.TrimSpace(id) == "" {
			return nil, 0, fmt.Errorf("user_ids[%d] is empty", i)
		}
	}
	return q.UserIDs, 0, nil
}

// adminWarmup serves POST /admin/cache/warmup.
func adminWarmup(adm Admin) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req adminWarmupRequest
		if err := decodeBody(r, &req); err != nil {
			adminBadBody(w, r, err)
			return
		}
		ids, recent, err := req.check()
		if err != nil {
			adminFail(w, r, http.StatusBadRequest, adminCodeInvalid, err.Error())
			return
		}
		n, err := adm.Warmup(r.Context(), ids, recent)
		if err != nil {
			adminServiceError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, struct {
			Loaded int `json:"loaded"`
		}{n})
	}
}

// adminPreloadJWKS serves POST /admin/jwks/preload.
func adminPreloadJWKS(adm Admin) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := decodeOptionalBody(r, &struct{}{}); err != nil {
			adminBadBody(w, r, err)
			return
		}
		issuers, err := adm.PreloadJWKS(r.Context())
		if err != nil {
			adminServiceError(w, r, err)
			return
		}
		if issuers == nil {
			issuers = map[string]int{}
		}
		writeJSON(w, http.StatusOK, struct {
			Issuers map[string]int `json:"issuers"`
		}{issuers})
	}
}

// adminDropUser serves DELETE /admin/cache/user/{user_id}; a blank user id
// is a 400.
func adminDropUser(adm Admin) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		userID := r.PathValue("user_id")
		adminAuditOf(r).userID = userID
		if strings.TrimSpace(userID) == "" {
			adminFail(w, r, http.StatusBadRequest, adminCodeInvalid, "the user id is empty")
			return
		}
		acks, err := adm.DropUser(r.Context(), userID)
		if err != nil {
			adminServiceError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, acks)
	}
}

// adminDropAll serves DELETE /admin/cache/all.
func adminDropAll(adm Admin) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		acks, err := adm.DropAll(r.Context())
		if err != nil {
			adminServiceError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, acks)
	}
}

// adminCluster serves GET /admin/cluster.
func adminCluster(adm Admin) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, adm.ClusterInfo())
	}
}
