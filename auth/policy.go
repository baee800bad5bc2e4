// Package auth answers auth questions. This file holds the policy
// semantics: a user's compiled permission set and the pure decision
// function over it.
//
// Resources are ':'-separated segments. In a permission's resource pattern a
// segment '*' matches exactly one segment, and a trailing '**' matches one or
// more remaining segments; every other segment matches itself only. An
// action matches exactly, or '*' matches any. A permission with conditions
// applies only when every one of its conditions is present in the request
// with an equal value. Everything not allowed is denied, and a disabled user
// is denied everything.
package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Limits on policy input.
const (
	MaxResourceLen = 512
	MaxActionLen   = 128
	MaxConditions  = 32
	maxCondLen     = 256
)

// ErrPolicy marks an invalid permission or request.
var ErrPolicy = errors.New("auth: invalid policy input")

// Permission is one grant as stored in the source.
type Permission struct {
	Resource   string            `json:"resource" yaml:"resource"`
	Action     string            `json:"action" yaml:"action"`
	Conditions map[string]string `json:"conditions,omitempty" yaml:"conditions,omitempty"`
}

// PermissionSet is a user's compiled permissions: what the cluster caches
// per user and every decision is evaluated from. It is immutable.
type PermissionSet struct {
	disabled bool
	grants   []grant
}

type grant struct {
	segs   []string // pattern segments; "*" matches one segment
	tail   bool     // the pattern ended in "**": one or more more segments
	action string   // "*" matches any
	conds  [][2]string
}

// Compile checks perms and compiles them. A disabled user's set denies
// everything, whatever its permissions.
func Compile(disabled bool, perms []Permission) (*PermissionSet, error) {
	set := &PermissionSet{disabled: disabled, grants: make([]grant, 0, len(perms))}
	for _, p := range perms {
		g, err := compileGrant(p)
		if err != nil {
			return nil, err
		}
		set.grants = append(set.grants, g)
	}
	return set, nil
}

func compileGrant(p Permission) (grant, error) {
	segs, err := splitResource(p.Resource)
	if err != nil {
		return grant{}, err
	}
	g := grant{action: p.Action}
	for i, s := range segs {
		switch {
		case s == "**" && i == len(segs)-1:
			g.tail = true
		case s == "**":
			return grant{}, fmt.Errorf("%w: %q: '**' only as the last segment", ErrPolicy, p.Resource)
		case s != "*" && strings.Contains(s, "*"):
			return grant{}, fmt.Errorf("%w: %q: '*' must be a whole segment", ErrPolicy, p.Resource)
		default:
			g.segs = append(g.segs, s)
		}
	}
	if err := checkAction(p.Action); err != nil {
		return grant{}, err
	}
	if g.conds, err = sortedConditions(p.Conditions); err != nil {
		return grant{}, err
	}
	return g, nil
}

// Allows reports whether the set allows action on resource under the
// request's conditions. It is a pure function of its arguments; malformed
// requests are denied.
func (s *PermissionSet) Allows(resource, action string, conditions map[string]string) bool {
	if s == nil || s.disabled || checkAction(action) != nil || len(conditions) > MaxConditions {
		return false
	}
	if checkResource(resource) != nil {
		return false
	}
	var buf [16]string // resources rarely have more segments: no allocation
	segs := appendSegments(buf[:0], resource)
	for i := range s.grants {
		if s.grants[i].allows(segs, action, conditions) {
			return true
		}
	}
	return false
}

func appendSegments(dst []string, r string) []string {
	for {
		seg, rest, more := strings.Cut(r, ":")
		dst = append(dst, seg)
		if !more {
			return dst
		}
		r = rest
	}
}

func (g *grant) allows(segs []string, action string, conds map[string]string) bool {
	if g.action != "*" && g.action != action {
		return false
	}
	n := len(segs)
	if n < len(g.segs) || (!g.tail && n != len(g.segs)) || (g.tail && n == len(g.segs)) {
		return false
	}
	for i, p := range g.segs {
		if p != "*" && p != segs[i] {
			return false
		}
	}
	for _, kv := range g.conds {
		if v, ok := conds[kv[0]]; !ok || v != kv[1] {
			return false
		}
	}
	return true
}

// Disabled reports whether the user is disabled.
func (s *PermissionSet) Disabled() bool { return s.disabled }

func splitResource(r string) ([]string, error) {
	if err := checkResource(r); err != nil {
		return nil, err
	}
	return strings.Split(r, ":"), nil
}

// checkResource accepts 1 to MaxResourceLen bytes of non-empty segments.
func checkResource(r string) error {
	if r == "" || len(r) > MaxResourceLen {
		return fmt.Errorf("%w: resource length %d not in [1, %d]", ErrPolicy, len(r), MaxResourceLen)
	}
	if r[0] == ':' || r[len(r)-1] == ':' || strings.Contains(r, "::") {
		return fmt.Errorf("%w: resource %q has an empty segment", ErrPolicy, r)
	}
	return nil
}

func checkAction(a string) error {
	if a == "" || len(a) > MaxActionLen || strings.ContainsAny(a, ": ") {
		return fmt.Errorf("%w: action %q", ErrPolicy, a)
	}
	return nil
}

func sortedConditions(c map[string]string) ([][2]string, error) {
	if len(c) > MaxConditions {
		return nil, fmt.Errorf("%w: %d conditions, at most %d", ErrPolicy, len(c), MaxConditions)
	}
	out := make([][2]string, 0, len(c))
	for k, v := range c {
		if k == "" || len(k) > maxCondLen || len(v) > maxCondLen {
			return nil, fmt.Errorf("%w: condition %q", ErrPolicy, k)
		}
		out = append(out, [2]string{k, v})
	}
	slices.SortFunc(out, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return out, nil
}
