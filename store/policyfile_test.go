package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// example is the file format from the policy-as-code documentation.
const example = `roles:
  - name: editor
    permissions:
      - {resource: "posts:*", action: write}
      - {resource: "orgs:42:**", action: "*", conditions: {region: eu}}
users:
  - {id: alice, roles: [editor]}
  - {id: bob, roles: [], disabled: true}
api_keys:
  - {key: "ak_live_0123456789abcdef", user: alice, name: ci, scopes: [read], expires_at: 2027-01-01T00:00:00Z}
`

func TestDecodeExample(t *testing.T) {
	p, err := DecodePolicy(strings.NewReader(example))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Roles) != 1 || len(p.Roles[0].Permissions) != 2 || p.Roles[0].Permissions[1].Conditions["region"] != "eu" {
		t.Fatalf("roles: %+v", p.Roles)
	}
	if len(p.Users) != 2 || !p.Users[1].Disabled || p.Users[0].Roles[0] != "editor" {
		t.Fatalf("users: %+v", p.Users)
	}
	sum := sha256.Sum256([]byte("ak_live_0123456789abcdef"))
	k := p.APIKeys[0]
	if k.Key != "" || k.KeySHA256 != hex.EncodeToString(sum[:]) || k.ExpiresAt == nil || k.ExpiresAt.Year() != 2027 {
		t.Fatalf("api key: %+v", k)
	}
	var out bytes.Buffer
	if err := p.Encode(&out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "ak_live") {
		t.Fatalf("export holds the plaintext key:\n%s", out.String())
	}
	again, err := DecodePolicy(&out)
	if err != nil || again.APIKeys[0].KeySHA256 != k.KeySHA256 || len(again.Roles[0].Permissions) != 2 {
		t.Fatalf("export does not import again: %v\n%s", err, out.String())
	}
}

func TestDecodeRejects(t *testing.T) {
	const secret = "ak_live_supersecretvalue"
	for name, tc := range map[string]struct{ in, want string }{
		"unknown field":     {"roles:\n  - name: r\n    grants: []\n", "line 3"},
		"unknown top level": {"groups: []\n", "line 1"},
		"duplicate key":     {"users:\n  - {id: a, id: b, roles: []}\n", "line 2"},
		"wrong type":        {"users:\n  - {id: a, roles: [], disabled: " + secret + "}\n", "line 2"},
		"bad pattern":       {"roles:\n  - name: r\n    permissions: [{resource: 'a:**:b', action: read}]\n", "role r"},
		"duplicate role":    {"roles: [{name: r}, {name: r}]\n", "role 2"},
		"duplicate user":    {"users: [{id: a, roles: []}, {id: a, roles: []}]\n", "user 2"},
		"bad user id":       {"users: [{id: '', roles: []}]\n", "user 1"},
		"key and hash":      {"api_keys: [{key: " + secret + ", key_sha256: " + strings.Repeat("a", 64) + ", user: a, name: n}]\n", "exactly one"},
		"no key":            {"api_keys: [{user: a, name: n}]\n", "exactly one"},
		"short key":         {"api_keys: [{key: short, user: a, name: n}]\n", "shorter"},
		"bad hash":          {"api_keys: [{key_sha256: XYZ, user: a, name: n}]\n", "64 lowercase hex"},
		"key without user":  {"api_keys: [{key: " + secret + ", name: n}]\n", "user or name"},
		"duplicate api key": {"api_keys: [{key: " + secret + ", user: a, name: n}, {key: " + secret + ", user: a, name: m}]\n", "duplicate key"},
		"not yaml":          {"{{{", "ErrPolicyFile"},
		"bad expiry":        {"api_keys: [{key: " + secret + ", user: a, name: n, expires_at: " + secret + "}]\n", "line 1"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodePolicy(strings.NewReader(tc.in))
			if !errors.Is(err, ErrPolicyFile) {
				t.Fatalf("DecodePolicy = %v, want ErrPolicyFile", err)
			}
			if tc.want != "ErrPolicyFile" && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error quotes a secret: %v", err)
			}
		})
	}
}

func TestDecodeEmpty(t *testing.T) {
	p, err := DecodePolicy(strings.NewReader(""))
	if err != nil || len(p.Roles)+len(p.Users)+len(p.APIKeys) != 0 {
		t.Fatalf("empty file: %+v, %v", p, err)
	}
}

// FuzzDecodePolicy: no input panics; what decodes exports and decodes again
// to the same number of entries, with no plaintext key.
func FuzzDecodePolicy(f *testing.F) {
	f.Add(example)
	f.Add("users: [{id: a, roles: [x]}]")
	f.Fuzz(func(t *testing.T, in string) {
		p, err := DecodePolicy(strings.NewReader(in))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := p.Encode(&out); err != nil {
			t.Fatalf("decoded but cannot encode: %v", err)
		}
		again, err := DecodePolicy(&out)
		if err != nil {
			t.Fatalf("export does not decode: %v\n%s", err, out.String())
		}
		if len(again.Roles) != len(p.Roles) || len(again.Users) != len(p.Users) || len(again.APIKeys) != len(p.APIKeys) {
			t.Fatalf("round trip changed the policy:\n%s", out.String())
		}
		for _, k := range again.APIKeys {
			if k.Key != "" {
				t.Fatal("plaintext key after decode")
			}
		}
	})
}
