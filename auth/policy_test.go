package auth

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/decisions.golden")

// TestDecisionMatrix evaluates testdata/decisions.txt and compares every
// answer with testdata/decisions.golden.
func TestDecisionMatrix(t *testing.T) {
	sets, queries := readMatrix(t, "testdata/decisions.txt")
	var out strings.Builder
	for _, q := range queries {
		decision := "deny"
		if sets[q.user].Allows(q.resource, q.action, q.conds) {
			decision = "allow"
		}
		fmt.Fprintf(&out, "%s -> %s\n", q.line, decision)
	}
	if *update {
		if err := os.WriteFile("testdata/decisions.golden", []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/decisions.golden")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(out.String(), "\n")
	for i, w := range strings.Split(string(want), "\n") {
		if i >= len(got) || got[i] != w {
			t.Errorf("decision %d: got %q, golden %q", i+1, at(got, i), w)
		}
	}
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "<missing>"
}

type query struct {
	line, user, resource, action string
	conds                        map[string]string
}

func readMatrix(t *testing.T, path string) (map[string]*PermissionSet, []query) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	perms := map[string][]Permission{}
	disabled := map[string]bool{}
	var order []string
	var queries []query
	user := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(line, "#") {
			continue
		}
		switch fields[0] {
		case "user":
			user = fields[1]
			order = append(order, user)
			disabled[user] = len(fields) > 2 && fields[2] == "disabled"
			perms[user] = []Permission{}
		case "perm":
			perms[user] = append(perms[user], Permission{Resource: fields[1], Action: fields[2], Conditions: kvs(fields[3:])})
		case "query":
			queries = append(queries, query{line: line, user: fields[1], resource: fields[2], action: fields[3], conds: kvs(fields[4:])})
		default:
			t.Fatalf("%s: unknown line %q", path, line)
		}
	}
	sets := map[string]*PermissionSet{}
	for _, u := range order {
		s, err := Compile(disabled[u], perms[u])
		if err != nil {
			t.Fatalf("user %s: %v", u, err)
		}
		sets[u] = s
	}
	return sets, queries
}

func kvs(fields []string) map[string]string {
	m := map[string]string{}
	for _, f := range fields {
		k, v, _ := strings.Cut(f, "=")
		m[k] = v
	}
	return m
}

func TestCompileRejects(t *testing.T) {
	for _, p := range []Permission{
		{Resource: "", Action: "read"},
		{Resource: "a::b", Action: "read"},
		{Resource: "a:**:b", Action: "read"},
		{Resource: "a:b*", Action: "read"},
		{Resource: "a:*b", Action: "read"},
		{Resource: strings.Repeat("a", MaxResourceLen+1), Action: "read"},
		{Resource: "a", Action: ""},
		{Resource: "a", Action: "re ad"},
		{Resource: "a", Action: "read", Conditions: map[string]string{"": "x"}},
	} {
		if _, err := Compile(false, []Permission{p}); !errors.Is(err, ErrPolicy) {
			t.Errorf("Compile(%+v) = %v, want ErrPolicy", p, err)
		}
	}
	if (*PermissionSet)(nil).Allows("a", "read", nil) {
		t.Fatal("a nil set allowed something")
	}
}

// modelAllows is a deliberately naive version of the semantics, built on
// regular expressions, that the real matcher is checked against.
func modelAllows(pattern, action, resource, want string) bool {
	if action != "*" && action != want {
		return false
	}
	var re strings.Builder
	re.WriteString("^")
	for i, seg := range strings.Split(pattern, ":") {
		if i > 0 {
			re.WriteString(":")
		}
		switch seg {
		case "*":
			re.WriteString("[^:]+")
		case "**":
			re.WriteString("[^:]+(:[^:]+)*")
		default:
			re.WriteString(regexp.QuoteMeta(seg))
		}
	}
	re.WriteString("$")
	return regexp.MustCompile(re.String()).MatchString(resource)
}

// TestMatcherAgreesWithModel compares the matcher with the model on random
// patterns and resources over a small alphabet, so that matches are common.
func TestMatcherAgreesWithModel(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	segs := []string{"a", "b", "c", "*"}
	gen := func(n int, pattern bool) string {
		parts := make([]string, 1+r.IntN(n))
		for i := range parts {
			parts[i] = segs[r.IntN(len(segs))]
			if !pattern && parts[i] == "*" {
				parts[i] = "a"
			}
		}
		if pattern && r.IntN(3) == 0 {
			parts[len(parts)-1] = "**"
		}
		return strings.Join(parts, ":")
	}
	for range 20_000 {
		pattern, resource := gen(4, true), gen(5, false)
		action := []string{"read", "*"}[r.IntN(2)]
		set, err := Compile(false, []Permission{{Resource: pattern, Action: action}})
		if err != nil {
			t.Fatalf("Compile(%q): %v", pattern, err)
		}
		if got, want := set.Allows(resource, "read", nil), modelAllows(pattern, action, resource, "read"); got != want {
			t.Fatalf("pattern %q action %q, resource %q: matcher %v, model %v", pattern, action, resource, got, want)
		}
	}
}

// FuzzAllows: no input panics, and a resource that does not split into
// non-empty segments is never allowed.
func FuzzAllows(f *testing.F) {
	f.Add("posts:*", "write", "posts:1", "write", "region", "eu")
	f.Add("**", "*", "a:b", "read", "", "")
	f.Fuzz(func(t *testing.T, pattern, action, resource, want, k, v string) {
		set, err := Compile(false, []Permission{{Resource: pattern, Action: action, Conditions: map[string]string{k: v}}})
		if err != nil {
			return
		}
		allowed := set.Allows(resource, want, map[string]string{k: v})
		if allowed && (resource == "" || strings.Contains(":"+resource+":", "::")) {
			t.Fatalf("malformed resource %q allowed by %q", resource, pattern)
		}
	})
}

// BenchmarkAllows: one decision from a 20-grant permission set (the
// uncached evaluation on a node that holds the set).
func BenchmarkAllows(b *testing.B) {
	perms := make([]Permission, 20)
	for i := range perms {
		perms[i] = Permission{Resource: fmt.Sprintf("orgs:%d:projects:*:docs:**", i), Action: "read", Conditions: map[string]string{"region": "eu"}}
	}
	set, err := Compile(false, perms)
	if err != nil {
		b.Fatal(err)
	}
	conds := map[string]string{"region": "eu"}
	b.ReportAllocs()
	for range b.N {
		if !set.Allows("orgs:19:projects:7:docs:a:b", "read", conds) {
			b.Fatal("denied")
		}
	}
}
