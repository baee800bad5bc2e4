package transport

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"
)

// MaxBodyBytes caps every JSON request body of the HTTP APIs.
const MaxBodyBytes = 256 << 10

// apiError is the JSON error body of every HTTP API: {"error": {...}}.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeJSON writes v as the JSON response with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes {"error": {"code", "message"}} with status code. The
// message must never contain a secret.
func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]apiError{"error": {Code: code, Message: message}})
}

// errBodyTooLarge is returned by decodeBody for a body over MaxBodyBytes.
var errBodyTooLarge = errors.New("request body too large")

// decodeBody decodes r's JSON body into v strictly: one object, no unknown
// fields, nothing after it, at most MaxBodyBytes. Errors name the problem
// but never echo the body.
func decodeBody(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return errors.New("content type must be application/json")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return fmt.Errorf("reading the body: %w", err)
	}
	if len(body) > MaxBodyBytes {
		return errBodyTooLarge
	}
	return decodeJSON(body, v)
}

// decodeOptionalBody is decodeBody for a body that may also be empty (zero
// bytes or none), which leaves v as it is.
func decodeOptionalBody(r *http.Request, v any) error {
	if r.Body == nil {
		return nil
	}
	br := bufio.NewReader(r.Body)
	if _, err := br.Peek(1); errors.Is(err, io.EOF) {
		return nil
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{br, r.Body}
	return decodeBody(r, v)
}

// decodeJSON decodes one JSON object from body into v, rejecting unknown
// fields and trailing data.
func decodeJSON(body []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON body: %s", jsonProblem(err))
	}
	if d.More() {
		return errors.New("invalid JSON body: data after the object")
	}
	return nil
}

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return "the body must be a JSON object"
	case errors.As(err, &typeErr):
		return fmt.Sprintf("field %q has the wrong type (%s)", typeErr.Field, jsonKind(typeErr.Type))
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("syntax error at offset %d", syntaxErr.Offset)
	case errors.Is(err, io.EOF):
		return "empty body"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "not a JSON object of the expected shape"
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(t reflect.Type) string {
	if t == reflect.TypeFor[time.Time]() {
		return "want an RFC 3339 time string"
	}
	switch t.Kind() {
	case reflect.String:
		return "want a string"
	case reflect.Bool:
		return "want a boolean"
	case reflect.Slice, reflect.Array:
		return "want an array"
	case reflect.Map, reflect.Struct:
		return "want an object"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8,
		reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "want a number"
	}
	return "unexpected value"
}

// bearerToken returns the token of an "Authorization: Bearer ..." header.
func bearerToken(h http.Header) (string, bool) {
	scheme, token, ok := strings.Cut(h.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// Tokens is a set of accepted bearer tokens, compared in constant time
// (SHA-256 first, so the comparison does not leak a token's length).
type Tokens struct{ sums [][sha256.Size]byte }

// NewTokens returns the set of the given tokens; empty ones are ignored.
func NewTokens(tokens ...string) Tokens {
	var t Tokens
	for _, s := range tokens {
		if s != "" {
			t.sums = append(t.sums, sha256.Sum256([]byte(s)))
		}
	}
	return t
}

// Empty reports whether no token is accepted.
func (t Tokens) Empty() bool { return len(t.sums) == 0 }

// Accepts reports whether token is one of the set.
func (t Tokens) Accepts(token string) bool {
	sum := sha256.Sum256([]byte(token))
	ok := 0
	for i := range t.sums {
		ok |= subtle.ConstantTimeCompare(sum[:], t.sums[i][:])
	}
	return ok == 1 && token != ""
}
