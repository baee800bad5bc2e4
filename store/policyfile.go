// Package store holds the source of truth: users, roles, permissions, API
// keys, sessions and token watermarks, on SQLite (the default, pure Go) or
// PostgreSQL, with one schema and embedded, versioned migrations. This file
// is the policy file format that `authnode policy import` and `export` read
// and write, so that a policy can live in git.
package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/avion/authnode/auth"
)

// ErrPolicyFile marks a policy file that cannot be used. Messages name the
// line where YAML allows it and never quote values (a value may be a key).
var ErrPolicyFile = errors.New("store: bad policy file")

// maxPolicyFile bounds a policy file.
const maxPolicyFile = 16 << 20

// PolicyFile is a whole policy: roles with their permissions, users with
// their roles, and API keys.
type PolicyFile struct {
	Roles   []Role   `yaml:"roles,omitempty"`
	Users   []User   `yaml:"users,omitempty"`
	APIKeys []APIKey `yaml:"api_keys,omitempty"`
}

// Role is a named set of permissions.
type Role struct {
	Name        string            `yaml:"name"`
	Permissions []auth.Permission `yaml:"permissions,omitempty"`
}

// User is a user and the roles it holds. Disabling a user denies it
// everything and revokes its tokens.
type User struct {
	ID       string   `yaml:"id"`
	Roles    []string `yaml:"roles"`
	Disabled bool     `yaml:"disabled,omitempty"`
}

// APIKey is an API key. In a file it is given either in plaintext (Key,
// hashed on decode and never kept) or as the hex SHA-256 of the key.
type APIKey struct {
	Key       string     `yaml:"key,omitempty"`
	KeySHA256 string     `yaml:"key_sha256,omitempty"`
	User      string     `yaml:"user"`
	Name      string     `yaml:"name"`
	Scopes    []string   `yaml:"scopes,omitempty"`
	ExpiresAt *Timestamp `yaml:"expires_at,omitempty"`
	Revoked   bool       `yaml:"revoked,omitempty"`
}

var (
	namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}$`)
	hexSHA256   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	quoted      = regexp.MustCompile("`[^`]*`|\"(?:[^\"\\\\]|\\\\.)*\"")
)

// Timestamp is an RFC 3339 time in a policy file. A malformed one is an
// error naming its line, without the value.
type Timestamp struct{ time.Time }

// UnmarshalYAML implements yaml.Unmarshaler.
func (t *Timestamp) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.Parse(time.RFC3339, n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return fmt.Errorf("line %d: want an RFC 3339 time", n.Line)
	}
	t.Time = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (t Timestamp) MarshalYAML() (any, error) { return t.UTC().Format(time.RFC3339), nil }

// minKeyLen is the shortest plaintext API key accepted.
const minKeyLen = 16

// DecodePolicy reads a policy file strictly: an unknown field, a duplicate
// key or a value of the wrong type is an error naming its line. Plaintext API
// keys are replaced by their SHA-256 before DecodePolicy returns.
func DecodePolicy(r io.Reader) (*PolicyFile, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxPolicyFile+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicyFile, err)
	}
	if len(raw) > maxPolicyFile {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrPolicyFile, maxPolicyFile)
	}
	var p PolicyFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil && !errors.Is(err, io.EOF) {
		// YAML quotes offending values; a value may be an API key.
		return nil, fmt.Errorf("%w: %s", ErrPolicyFile, quoted.ReplaceAllString(err.Error(), "`…`"))
	}
	if err := p.normalise(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Encode writes p as YAML; API keys appear only as their SHA-256.
func (p *PolicyFile) Encode(w io.Writer) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(p); err != nil {
		return fmt.Errorf("store: encode policy: %w", err)
	}
	return enc.Close()
}

// normalise validates p and hashes plaintext keys.
func (p *PolicyFile) normalise() error {
	seen := map[string]bool{}
	for i, r := range p.Roles {
		if !namePattern.MatchString(r.Name) || seen["role:"+r.Name] {
			return fmt.Errorf("%w: role %d: missing, malformed or duplicate name", ErrPolicyFile, i+1)
		}
		seen["role:"+r.Name] = true
		if _, err := auth.Compile(false, r.Permissions); err != nil {
			return fmt.Errorf("%w: role %s: %w", ErrPolicyFile, r.Name, err)
		}
	}
	for i, u := range p.Users {
		if !namePattern.MatchString(u.ID) || seen["user:"+u.ID] {
			return fmt.Errorf("%w: user %d: missing, malformed or duplicate id", ErrPolicyFile, i+1)
		}
		seen["user:"+u.ID] = true
		for _, r := range u.Roles {
			if !namePattern.MatchString(r) {
				return fmt.Errorf("%w: user %s: malformed role name", ErrPolicyFile, u.ID)
			}
		}
	}
	for i := range p.APIKeys {
		if err := p.APIKeys[i].normalise(); err != nil {
			return fmt.Errorf("%w: api key %d: %w", ErrPolicyFile, i+1, err)
		}
		if h := p.APIKeys[i].KeySHA256; seen["key:"+h] {
			return fmt.Errorf("%w: api key %d: duplicate key", ErrPolicyFile, i+1)
		}
		seen["key:"+p.APIKeys[i].KeySHA256] = true
	}
	return nil
}

func (k *APIKey) normalise() error {
	switch {
	case (k.Key == "") == (k.KeySHA256 == ""):
		return errors.New("give exactly one of key and key_sha256")
	case k.Key != "" && len(k.Key) < minKeyLen:
		return fmt.Errorf("key shorter than %d characters", minKeyLen)
	case k.KeySHA256 != "" && !hexSHA256.MatchString(k.KeySHA256):
		return errors.New("key_sha256 is not 64 lowercase hex digits")
	case !namePattern.MatchString(k.User) || k.Name == "" || len(k.Name) > 128:
		return errors.New("missing or malformed user or name")
	}
	if k.Key != "" {
		sum := sha256.Sum256([]byte(k.Key))
		k.KeySHA256, k.Key = hex.EncodeToString(sum[:]), ""
	}
	return nil
}
