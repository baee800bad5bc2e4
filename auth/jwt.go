package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/avion/authnode/shard"
)

// Token error codes: one per way a token can fail, as the APIs report them.
const (
	CodeMalformed        = "malformed"
	CodeTooLarge         = "too_large"
	CodeSignatureInvalid = "signature_invalid"
	CodeAlgNotAllowed    = "alg_not_allowed"
	CodeUnknownKid       = "unknown_kid"
	CodeExpired          = "expired"
	CodeNotYetValid      = "not_yet_valid"
	CodeIssuerInvalid    = "issuer_invalid"
	CodeAudienceInvalid  = "audience_invalid"
	CodeCritUnsupported  = "crit_unsupported"
	CodeRevoked          = "revoked"
)

// TokenError is why a token is not valid. Its message never contains the
// token.
type TokenError struct {
	Code   string
	Reason string
}

func (e *TokenError) Error() string { return "auth: token " + e.Code + ": " + e.Reason }

func tokenErr(code, reason string) error { return &TokenError{Code: code, Reason: reason} }

// ErrorCode returns err's token error code, or "" when err is no TokenError.
func ErrorCode(err error) string {
	var te *TokenError
	if errors.As(err, &te) {
		return te.Code
	}
	return ""
}

// Issuer is one trusted token issuer and how its tokens are checked.
type Issuer struct {
	Issuer      string
	Audiences   []string      // a token must name at least one; empty is a config error
	Algorithms  []string      // default RS256, ES256, EdDSA
	Keys        []Key         // static keys; or
	JWKS        *JWKS         // keys kept fresh from a JWKS URL or file
	Leeway      time.Duration // default 30 s
	MaxLifetime time.Duration // exp − iat at most; default 24 h
	Types       []string      // allowed typ values; empty: not checked
}

// Validator checks JWTs following RFC 8725. It is safe for concurrent use.
type Validator struct {
	issuers  map[string]*Issuer
	maxBytes int
	now      func() time.Time
	settings [32]byte // hash of every setting that affects a result
	jwks     []*JWKS  // the issuers' key sets
}

// NewValidator checks the configuration: each issuer needs audiences and
// usable keys bound to allowed algorithms.
func NewValidator(issuers []Issuer, maxBytes int, now func() time.Time) (*Validator, error) {
	if now == nil {
		now = time.Now
	}
	if maxBytes <= 0 {
		maxBytes = 8 << 10
	}
	v := &Validator{issuers: map[string]*Issuer{}, maxBytes: maxBytes, now: now}
	for i := range issuers {
		is := issuers[i]
		if err := is.normalise(); err != nil {
			return nil, err
		}
		if v.issuers[is.Issuer] != nil {
			return nil, fmt.Errorf("auth: issuer %q configured twice", is.Issuer)
		}
		v.issuers[is.Issuer] = &is
		if is.JWKS != nil {
			v.jwks = append(v.jwks, is.JWKS)
		}
	}
	v.settings = settingsHash(v)
	return v, nil
}

// MaxBytes returns the token size cap.
func (v *Validator) MaxBytes() int { return v.maxBytes }

// Issuers returns the configured issuers; the caller must not modify them.
func (v *Validator) Issuers() []*Issuer {
	out := make([]*Issuer, 0, len(v.issuers))
	for _, is := range v.issuers {
		out = append(out, is)
	}
	slices.SortFunc(out, func(a, b *Issuer) int { return strings.Compare(a.Issuer, b.Issuer) })
	return out
}

// keyEpoch changes whenever a key of any issuer disappears or changes.
func (v *Validator) keyEpoch() uint64 {
	var sum uint64
	for _, j := range v.jwks {
		sum += j.Epoch()
	}
	return sum
}

// keysVersion changes whenever any issuer's key set changes.
func (v *Validator) keysVersion() uint64 {
	var sum uint64
	for _, j := range v.jwks {
		sum += j.Version()
	}
	return sum
}

func (is *Issuer) normalise() error {
	switch {
	case is.Issuer == "":
		return errors.New("auth: an issuer needs a name (iss)")
	case len(is.Audiences) == 0:
		return fmt.Errorf("auth: issuer %q: no audiences configured", is.Issuer)
	}
	if len(is.Algorithms) == 0 {
		is.Algorithms = []string{"RS256", "ES256", "EdDSA"}
	}
	if is.Leeway == 0 {
		is.Leeway = 30 * time.Second
	}
	if is.MaxLifetime == 0 {
		is.MaxLifetime = 24 * time.Hour
	}
	kids := map[string]bool{}
	for _, k := range is.Keys {
		if err := checkKey(k); err != nil {
			return fmt.Errorf("auth: issuer %q key %q: %w", is.Issuer, k.ID, err)
		}
		if !slices.Contains(is.Algorithms, k.Algorithm) {
			return fmt.Errorf("auth: issuer %q key %q: algorithm %s not allowed", is.Issuer, k.ID, k.Algorithm)
		}
		if kids[k.ID] {
			return fmt.Errorf("auth: issuer %q: kid %q twice", is.Issuer, k.ID)
		}
		kids[k.ID] = true
	}
	return nil
}

// Claims is what a valid token says.
type Claims struct {
	UserID    string
	Issuer    string
	Audience  []string
	Scopes    []string
	IssuedAt  time.Time
	ExpiresAt time.Time
	TokenType string
	Metadata  map[string]any // the non-registered claims, if small
}

// maxMetadata bounds the non-registered claims kept in Claims.Metadata.
const maxMetadata = 4 << 10

// Validate checks token and returns its claims, or a *TokenError. The
// signature is checked before any time or audience claim, so a token with a
// bad signature is never reported as merely expired. A kid the issuer's
// JWKS lacks triggers one rate-limited refresh, waited for briefly.
func (v *Validator) Validate(ctx context.Context, token string) (Claims, error) {
	if len(token) > v.maxBytes {
		return Claims{}, tokenErr(CodeTooLarge, "token exceeds the size limit")
	}
	header, payload, err := splitToken(token)
	if err != nil {
		return Claims{}, err
	}
	is, key, err := v.pick(header, payload)
	if is != nil && is.JWKS != nil && ErrorCode(err) != CodeMalformed { // the kid was looked up
		unknown := ErrorCode(err) == CodeUnknownKid
		is.JWKS.countKid(!unknown)
		if unknown && is.JWKS.UnknownKid(ctx) {
			is, key, err = v.pick(header, payload)
		}
	}
	if err != nil {
		return Claims{}, err
	}
	var claims jwt.MapClaims
	parser := jwt.NewParser(jwt.WithValidMethods([]string{key.Algorithm}), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithIssuer(is.Issuer), jwt.WithAudience(is.Audiences...), jwt.WithLeeway(is.Leeway),
		jwt.WithTimeFunc(v.now), jwt.WithStrictDecoding())
	_, err = parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) {
		if key.Secret != nil {
			return key.Secret, nil
		}
		return key.Public, nil
	})
	if err != nil {
		return Claims{}, mapParseError(err)
	}
	return is.claims(claims, payload)
}

// splitToken checks the compact form (three strict base64url parts) and
// returns the decoded header and payload objects, rejecting duplicate keys
// (encoding/json would silently keep the last one).
func splitToken(token string) (map[string]json.RawMessage, map[string]json.RawMessage, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[2] == "" {
		return nil, nil, tokenErr(CodeMalformed, "want three dot-separated parts")
	}
	dec := base64.RawURLEncoding.Strict()
	var objs [2]map[string]json.RawMessage
	for i := range 2 {
		raw, err := dec.DecodeString(parts[i])
		if err != nil {
			return nil, nil, tokenErr(CodeMalformed, "part is not canonical base64url")
		}
		if objs[i], err = decodeObject(raw); err != nil {
			return nil, nil, tokenErr(CodeMalformed, "part is not a JSON object without duplicate keys")
		}
	}
	if _, err := dec.DecodeString(parts[2]); err != nil {
		return nil, nil, tokenErr(CodeMalformed, "signature is not canonical base64url")
	}
	return objs[0], objs[1], nil
}

// decodeObject decodes one JSON object, rejecting duplicate keys and
// trailing data.
func decodeObject(b []byte) (map[string]json.RawMessage, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not an object")
	}
	out := map[string]json.RawMessage{}
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return nil, err
		}
		k, _ := t.(string)
		if _, dup := out[k]; dup {
			return nil, errors.New("duplicate key")
		}
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	if _, err := d.Token(); err != nil {
		return nil, err
	}
	if d.More() || d.InputOffset() != int64(len(bytes.TrimRight(b, " \t\r\n"))) {
		return nil, errors.New("trailing data")
	}
	return out, nil
}

// pick finds the issuer and the one key the token may be checked with. The
// jku, x5u, jwk and x5c headers are never used; crit is refused.
func (v *Validator) pick(header, payload map[string]json.RawMessage) (*Issuer, Key, error) {
	if _, ok := header["crit"]; ok {
		return nil, Key{}, tokenErr(CodeCritUnsupported, "crit header present")
	}
	alg, ok := str(header["alg"])
	if !ok || strings.EqualFold(alg, "none") {
		return nil, Key{}, tokenErr(CodeAlgNotAllowed, "alg missing or none")
	}
	iss, _ := str(payload["iss"])
	is := v.issuers[iss]
	if is == nil {
		return nil, Key{}, tokenErr(CodeIssuerInvalid, "issuer not trusted")
	}
	if !slices.Contains(is.Algorithms, alg) {
		return nil, Key{}, tokenErr(CodeAlgNotAllowed, "algorithm not allowed for this issuer")
	}
	if len(is.Types) > 0 {
		typ, _ := str(header["typ"])
		if !slices.ContainsFunc(is.Types, func(t string) bool { return strings.EqualFold(t, typ) }) {
			return nil, Key{}, tokenErr(CodeMalformed, "typ not allowed")
		}
	}
	key, err := is.key(header)
	if err != nil {
		return is, Key{}, err
	}
	if key.Algorithm != alg {
		return is, Key{}, tokenErr(CodeAlgNotAllowed, "the key is bound to another algorithm")
	}
	return is, key, nil
}

// keySet returns the issuer's current keys.
func (is *Issuer) keySet() []Key {
	if is.JWKS != nil {
		return is.JWKS.Keys()
	}
	return is.Keys
}

func (is *Issuer) key(header map[string]json.RawMessage) (Key, error) {
	keys := is.keySet()
	raw, has := header["kid"]
	if !has {
		if len(keys) == 1 {
			return keys[0], nil
		}
		return Key{}, tokenErr(CodeUnknownKid, "no kid and the issuer has several keys")
	}
	kid, ok := str(raw)
	if !ok || len(kid) > maxKidLen {
		return Key{}, tokenErr(CodeMalformed, "kid is not a short string")
	}
	for _, k := range keys {
		if k.ID == kid {
			return k, nil
		}
	}
	return Key{}, tokenErr(CodeUnknownKid, "no key with this kid")
}

func str(raw json.RawMessage) (string, bool) {
	var s string
	if raw == nil || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// mapParseError turns golang-jwt's errors into codes. The library checks the
// signature before the claims.
func mapParseError(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return tokenErr(CodeSignatureInvalid, "signature does not verify")
	case errors.Is(err, jwt.ErrTokenExpired):
		return tokenErr(CodeExpired, "token expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return tokenErr(CodeNotYetValid, "token not valid yet")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return tokenErr(CodeIssuerInvalid, "issuer not trusted")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return tokenErr(CodeAudienceInvalid, "audience not accepted")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return tokenErr(CodeMalformed, "a required claim is missing")
	}
	return tokenErr(CodeMalformed, "token cannot be parsed")
}

// claims applies the checks golang-jwt does not make and extracts Claims.
func (is *Issuer) claims(c jwt.MapClaims, payload map[string]json.RawMessage) (Claims, error) {
	sub, ok := str(payload["sub"])
	if !ok || sub == "" || len(sub) > shard.MaxKeyLen {
		// A longer sub could never be revoked: user ids are cache keys.
		return Claims{}, tokenErr(CodeMalformed, "sub missing, not a string, or too long")
	}
	iat, err := c.GetIssuedAt()
	if err != nil || iat == nil {
		return Claims{}, tokenErr(CodeMalformed, "iat missing")
	}
	exp, _ := c.GetExpirationTime()
	if exp.Sub(iat.Time) > is.MaxLifetime {
		return Claims{}, tokenErr(CodeExpired, "lifetime longer than allowed")
	}
	aud, _ := c.GetAudience()
	out := Claims{UserID: sub, Issuer: is.Issuer, Audience: aud, IssuedAt: iat.Time, ExpiresAt: exp.Time}
	out.Scopes = scopes(payload)
	out.TokenType, _ = str(payload["token_type"])
	out.Metadata = metadata(payload)
	return out, nil
}

func scopes(payload map[string]json.RawMessage) []string {
	if s, ok := str(payload["scope"]); ok {
		return strings.Fields(s)
	}
	var scp []string
	if raw := payload["scp"]; raw != nil && json.Unmarshal(raw, &scp) == nil {
		return scp
	}
	return nil
}

var registered = map[string]bool{"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true, "scope": true, "scp": true, "token_type": true}

// metadata returns the non-registered claims when they are small.
func metadata(payload map[string]json.RawMessage) map[string]any {
	out := map[string]any{}
	size := 0
	for k, raw := range payload {
		if registered[k] {
			continue
		}
		size += len(k) + len(raw)
		var v any
		if size > maxMetadata || json.Unmarshal(raw, &v) != nil {
			return nil
		}
		out[k] = v
	}
	return out
}
