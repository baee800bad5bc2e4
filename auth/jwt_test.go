package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testKeys = sync.OnceValue(func() (k struct {
	rsa   *rsa.PrivateKey
	ec    *ecdsa.PrivateKey
	ed    ed25519.PrivateKey
	other *rsa.PrivateKey
}) {
	k.rsa, _ = rsa.GenerateKey(rand.Reader, 2048)
	k.other, _ = rsa.GenerateKey(rand.Reader, 2048)
	k.ec, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, k.ed, _ = ed25519.GenerateKey(rand.Reader)
	return k
})

var now = time.Unix(1_800_000_000, 0)

func testValidator(t testing.TB) *Validator {
	t.Helper()
	return validatorAt(t, func() time.Time { return now })
}

// validatorAt trusts the test issuers (static RS256, ES256, EdDSA and HS256
// keys), reading the time from clock.
func validatorAt(t testing.TB, clock func() time.Time) *Validator {
	t.Helper()
	k := testKeys()
	v, err := NewValidator([]Issuer{{
		Issuer: "https://issuer.test", Audiences: []string{"api", "admin"},
		Keys: []Key{
			{ID: "rsa-1", Algorithm: "RS256", Public: &k.rsa.PublicKey},
			{ID: "ec-1", Algorithm: "ES256", Public: &k.ec.PublicKey},
			{ID: "ed-1", Algorithm: "EdDSA", Public: k.ed.Public()},
		},
	}, {
		Issuer: "https://hmac.test", Audiences: []string{"api"}, Algorithms: []string{"HS256"},
		Keys: []Key{{Algorithm: "HS256", Secret: []byte("0123456789abcdef0123456789abcdef")}},
	}}, 0, clock)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func baseClaims() jwt.MapClaims {
	return jwt.MapClaims{"iss": "https://issuer.test", "aud": "api", "sub": "alice",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "scope": "read write", "tenant": "acme"}
}

func sign(t testing.TB, method jwt.SigningMethod, kid string, key any, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// craft builds a token from raw header and payload JSON and a raw signature.
func craft(header, payload string, sig []byte) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString(sig)
}

// resign replaces a token's header or payload and signs it again with key.
func resignRaw(t *testing.T, header, payload string, method jwt.SigningMethod, key any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	sig, err := method.Sign(signing, key)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + enc.EncodeToString(sig)
}

func TestValidTokens(t *testing.T) {
	v := testValidator(t)
	k := testKeys()
	for name, tok := range map[string]string{
		"RS256": sign(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, baseClaims(), nil),
		"ES256": sign(t, jwt.SigningMethodES256, "ec-1", k.ec, baseClaims(), nil),
		"EdDSA": sign(t, jwt.SigningMethodEdDSA, "ed-1", k.ed, baseClaims(), nil),
		"HS256 with an explicit secret, no kid": sign(t, jwt.SigningMethodHS256, "", []byte("0123456789abcdef0123456789abcdef"),
			with(baseClaims(), "iss", "https://hmac.test"), nil),
		"jku, x5u, jwk, x5c are ignored": sign(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, baseClaims(),
			map[string]any{"jku": "https://evil.test/jwks", "x5u": "https://evil.test/c", "jwk": map[string]any{"kty": "oct"}, "x5c": []string{"x"}}),
		"exp within the leeway":    sign(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, with(baseClaims(), "exp", now.Add(-29*time.Second).Unix(), "iat", now.Add(-time.Hour).Unix()), nil),
		"nbf within the leeway":    sign(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, with(baseClaims(), "nbf", now.Add(29*time.Second).Unix()), nil),
		"audience among several":   sign(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, with(baseClaims(), "aud", []string{"other", "admin"}), nil),
		"lifetime exactly the cap": sign(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, with(baseClaims(), "exp", now.Add(24*time.Hour).Unix()), nil),
	} {
		c, err := v.Validate(context.Background(), tok)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if c.UserID != "alice" {
			t.Errorf("%s: claims %+v", name, c)
		}
	}
	c, _ := v.Validate(context.Background(), sign(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, baseClaims(), nil))
	if strings.Join(c.Scopes, ",") != "read,write" || c.Metadata["tenant"] != "acme" || !c.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("claims %+v", c)
	}
	c, _ = v.Validate(context.Background(), sign(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, with(baseClaims(), "scope", nil, "scp", []string{"a", "b"}), nil))
	if strings.Join(c.Scopes, ",") != "a,b" {
		t.Fatalf("scp scopes %v", c.Scopes)
	}
}

// TestRFC8725 lists the ways a token must fail, each with its code.
func TestRFC8725(t *testing.T) {
	v := testValidator(t)
	k := testKeys()
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: mustPKIX(t, &k.rsa.PublicKey)})
	good := sign(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, baseClaims(), nil)
	parts := strings.Split(good, ".")
	payload, _ := json.Marshal(baseClaims())
	cases := []struct {
		name, token, code string
	}{
		{"alg none", craft(`{"alg":"none","kid":"rsa-1"}`, string(payload), []byte("x")), CodeAlgNotAllowed},
		{"alg NoNe", craft(`{"alg":"NoNe"}`, string(payload), []byte("x")), CodeAlgNotAllowed},
		{"RS256 to HS256 with the PEM public key", resignRaw(t, `{"alg":"HS256","kid":"rsa-1"}`, string(payload), jwt.SigningMethodHS256, pubPEM), CodeAlgNotAllowed},
		{"HS256 with the public key on an issuer allowing HS256", resignRaw(t, `{"alg":"HS256"}`, string(mustJSON(t, with(baseClaims(), "iss", "https://hmac.test"))), jwt.SigningMethodHS256, pubPEM), CodeSignatureInvalid},
		{"header alg does not match the key", resignRaw(t, `{"alg":"ES256","kid":"rsa-1"}`, string(payload), jwt.SigningMethodES256, k.ec), CodeAlgNotAllowed},
		{"crit", resignRaw(t, `{"alg":"RS256","kid":"rsa-1","crit":["exp"]}`, string(payload), jwt.SigningMethodRS256, k.rsa), CodeCritUnsupported},
		{"jwk header with the attacker's key", sign(t, jwt.SigningMethodRS256, "rsa-1", k.other, baseClaims(), map[string]any{"jwk": map[string]any{"kty": "RSA"}}), CodeSignatureInvalid},
		{"kid traversal", sign(t, jwt.SigningMethodRS256, "../../../dev/null", k.rsa, baseClaims(), nil), CodeUnknownKid},
		{"kid too long", sign(t, jwt.SigningMethodRS256, strings.Repeat("k", 300), k.rsa, baseClaims(), nil), CodeMalformed},
		{"kid not a string", resignRaw(t, `{"alg":"RS256","kid":7}`, string(payload), jwt.SigningMethodRS256, k.rsa), CodeMalformed},
		{"no kid, several keys", sign(t, jwt.SigningMethodRS256, "", k.rsa, baseClaims(), nil), CodeUnknownKid},
		{"no exp", sign(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, with(baseClaims(), "exp", nil), nil), CodeMalformed},
		{"no iat", sign(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, with(baseClaims(), "iat", nil), nil), CodeMalformed},
		{"no sub", sign(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, with(baseClaims(), "sub", nil), nil), CodeMalformed},
		{"sub not a string", sign(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, with(baseClaims(), "sub", 42), nil), CodeMalformed},
		{"sub longer than a user id may be", sign(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, with(baseClaims(), "sub", strings.Repeat("u", 1025)), nil), CodeMalformed},
		{"expired beyond the leeway", sign(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, with(baseClaims(), "exp", now.Add(-31*time.Second).Unix(), "iat", now.Add(-time.Hour).Unix()), nil), CodeExpired},
		{"nbf beyond the leeway", sign(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, with(baseClaims(), "nbf", now.Add(31*time.Second).Unix()), nil), CodeNotYetValid},
		{"iat in the future", sign(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, with(baseClaims(), "iat", now.Add(time.Minute).Unix()), nil), CodeNotYetValid},
		{"lifetime over the cap", sign(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, with(baseClaims(), "exp", now.Add(25*time.Hour).Unix()), nil), CodeExpired},
		{"wrong issuer", sign(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, with(baseClaims(), "iss", "https://evil.test"), nil), CodeIssuerInvalid},
		{"wrong audience", sign(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, with(baseClaims(), "aud", "other"), nil), CodeAudienceInvalid},
		{"oversized", good + strings.Repeat("A", 9000), CodeTooLarge},
		{"padded base64", parts[0] + "=." + parts[1] + "." + parts[2], CodeMalformed},
		{"standard base64 alphabet", strings.ReplaceAll(strings.ReplaceAll(good, "-", "+"), "_", "/"), CodeMalformed},
		{"two parts", parts[0] + "." + parts[1], CodeMalformed},
		{"four parts", good + ".x", CodeMalformed},
		{"empty signature", parts[0] + "." + parts[1] + ".", CodeMalformed},
		{"duplicate header key", resignRaw(t, `{"alg":"RS256","kid":"rsa-1","kid":"ec-1"}`, string(payload), jwt.SigningMethodRS256, k.rsa), CodeMalformed},
		{"duplicate claim", resignRaw(t, `{"alg":"RS256","kid":"rsa-1"}`, strings.Replace(string(payload), `"sub":"alice"`, `"sub":"alice","sub":"root"`, 1), jwt.SigningMethodRS256, k.rsa), CodeMalformed},
		{"ECDSA zero signature", craft(`{"alg":"ES256","kid":"ec-1"}`, string(payload), make([]byte, 64)), CodeSignatureInvalid},
		{"ECDSA DER signature", derSigned(t, string(payload)), CodeSignatureInvalid},
		{"bad signature and expired", sign(t, jwt.SigningMethodRS256, "rsa-1", k.other, with(baseClaims(), "exp", now.Add(-time.Hour).Unix(), "iat", now.Add(-2*time.Hour).Unix()), nil), CodeSignatureInvalid},
		{"not JSON", craft(`{"alg":"RS256"`, string(payload), []byte("x")), CodeMalformed},
	}
	for _, tc := range cases {
		_, err := v.Validate(context.Background(), tc.token)
		if got := ErrorCode(err); got != tc.code {
			t.Errorf("%s: code %q (%v), want %q", tc.name, got, err, tc.code)
		}
		if err != nil && strings.Contains(err.Error(), tc.token) {
			t.Errorf("%s: the error quotes the token", tc.name)
		}
	}
}

func mustPKIX(t *testing.T, pub any) []byte {
	t.Helper()
	b, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// derSigned signs with the right EC key but encodes the signature as ASN.1
// DER instead of the fixed-size r||s JWS requires.
func derSigned(t *testing.T, payload string) string {
	t.Helper()
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(`{"alg":"ES256","kid":"ec-1"}`)) + "." + enc.EncodeToString([]byte(payload))
	sig, err := jwt.SigningMethodES256.Sign(signing, testKeys().ec)
	if err != nil {
		t.Fatal(err)
	}
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	der := derSig(r, s)
	return signing + "." + enc.EncodeToString(der)
}

func derSig(r, s *big.Int) []byte {
	intBytes := func(i *big.Int) []byte {
		b := i.Bytes()
		if len(b) > 0 && b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return append([]byte{0x02, byte(len(b))}, b...)
	}
	body := append(intBytes(r), intBytes(s)...)
	return append([]byte{0x30, byte(len(body))}, body...)
}

func TestValidatorConfig(t *testing.T) {
	k := testKeys()
	short, _ := rsa.GenerateKey(rand.Reader, 1024)
	for name, is := range map[string]Issuer{
		"no audiences":       {Issuer: "i", Keys: []Key{{ID: "a", Algorithm: "RS256", Public: &k.rsa.PublicKey}}},
		"short RSA key":      {Issuer: "i", Audiences: []string{"a"}, Keys: []Key{{ID: "a", Algorithm: "RS256", Public: &short.PublicKey}}},
		"short HMAC secret":  {Issuer: "i", Audiences: []string{"a"}, Algorithms: []string{"HS256"}, Keys: []Key{{Algorithm: "HS256", Secret: []byte("short")}}},
		"HMAC with a public": {Issuer: "i", Audiences: []string{"a"}, Algorithms: []string{"HS256"}, Keys: []Key{{Algorithm: "HS256", Public: &k.rsa.PublicKey, Secret: make([]byte, 32)}}},
		"alg not allowed":    {Issuer: "i", Audiences: []string{"a"}, Keys: []Key{{ID: "a", Algorithm: "HS256", Secret: make([]byte, 32)}}},
		"key type mismatch":  {Issuer: "i", Audiences: []string{"a"}, Keys: []Key{{ID: "a", Algorithm: "ES256", Public: &k.rsa.PublicKey}}},
		"duplicate kid":      {Issuer: "i", Audiences: []string{"a"}, Keys: []Key{{ID: "a", Algorithm: "RS256", Public: &k.rsa.PublicKey}, {ID: "a", Algorithm: "ES256", Public: &k.ec.PublicKey}}},
		"no name":            {Audiences: []string{"a"}},
	} {
		if _, err := NewValidator([]Issuer{is}, 0, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseJWKS(t *testing.T) {
	k := testKeys()
	short, _ := rsa.GenerateKey(rand.Reader, 1024)
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	rsaJWK := func(kid string, pub *rsa.PublicKey, extra string) string {
		return fmt.Sprintf(`{"kty":"RSA","kid":%q,"n":%q,"e":%q%s}`, kid, b64(pub.N.Bytes()), b64(big.NewInt(int64(pub.E)).Bytes()), extra)
	}
	ecPoint, _ := k.ec.PublicKey.Bytes() // 0x04 || X || Y
	doc := `{"keys":[` + strings.Join([]string{
		rsaJWK("good-rsa", &k.rsa.PublicKey, ""),
		rsaJWK("short", &short.PublicKey, ""),
		rsaJWK("enc", &k.rsa.PublicKey, `,"use":"enc"`),
		fmt.Sprintf(`{"kty":"EC","kid":"good-ec","crv":"P-256","x":%q,"y":%q}`, b64(ecPoint[1:33]), b64(ecPoint[33:])),
		`{"kty":"EC","kid":"off-curve","crv":"P-256","x":"AQ","y":"AQ"}`,
		fmt.Sprintf(`{"kty":"OKP","kid":"good-ed","crv":"Ed25519","x":%q}`, b64(k.ed.Public().(ed25519.PublicKey))),
		`{"kty":"oct","kid":"sym","k":"c2VjcmV0"}`,
		`{"kty":"RSA","kid":"bad-b64","n":"!!","e":"AQAB"}`,
		`"not an object"`,
	}, ",") + `]}`
	keys, skipped, err := ParseJWKS([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, key := range keys {
		ids = append(ids, key.ID+"/"+key.Algorithm)
	}
	if strings.Join(ids, " ") != "good-rsa/RS256 good-ec/ES256 good-ed/EdDSA" || skipped != 6 {
		t.Fatalf("keys %v, skipped %d", ids, skipped)
	}
	if _, _, err := ParseJWKS([]byte(`{"nokeys":1}`)); err == nil {
		t.Fatal("a document without keys was accepted")
	}
}

// FuzzValidate: no input panics, and only a token that names a user is
// valid.
func FuzzValidate(f *testing.F) {
	k := testKeys()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, baseClaims())
	tok.Header["kid"] = "rsa-1"
	good, _ := tok.SignedString(k.rsa)
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, token string) {
		v := testValidator(t)
		c, err := v.Validate(context.Background(), token)
		if err == nil && c.UserID == "" {
			t.Fatal("a valid token without a user")
		}
		if err != nil && ErrorCode(err) == "" {
			t.Fatalf("an error without a code: %v", err)
		}
	})
}

// BenchmarkValidateRS256Uncached: a full RS256 validation (parse, checks,
// signature); the validation cache will be measured against it.
func BenchmarkValidateRS256Uncached(b *testing.B) {
	v := testValidator(b)
	tok := sign(b, jwt.SigningMethodRS256, "rsa-1", testKeys().rsa, baseClaims(), nil)
	b.ReportAllocs()
	for range b.N {
		if _, err := v.Validate(context.Background(), tok); err != nil {
			b.Fatal(err)
		}
	}
}
