package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/avion/authnode/hlc"
	"github.com/avion/authnode/shard"
)

// fakeUsers is a Cache whose entries the test sets directly.
type fakeUsers struct {
	entries map[string]shard.Entry
	err     error
}

func (f *fakeUsers) Get(_ context.Context, key string) (shard.Entry, error) {
	if f.err != nil {
		return shard.Entry{}, f.err
	}
	if e, ok := f.entries[key]; ok {
		return e, nil
	}
	b, _ := json.Marshal(storedPolicy{Found: false})
	return shard.Entry{Value: b, Gen: 1, Expires: time.Now().Add(time.Minute)}, nil
}

func (f *fakeUsers) set(user string, gen hlc.Gen, p storedPolicy) {
	b, _ := json.Marshal(p)
	f.entries[user] = shard.Entry{Value: b, Gen: gen, Expires: time.Now().Add(time.Minute)}
}

func newTestAuthorizer(t *testing.T, users Cache) *Authorizer {
	t.Helper()
	a, err := NewAuthorizer(users, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

// TestNewGenerationNeverMeetsOldMemo: once the user's entry has a new
// generation, a memoised decision of the old one is not used.
func TestNewGenerationNeverMeetsOldMemo(t *testing.T) {
	users := &fakeUsers{entries: map[string]shard.Entry{}}
	users.set("u", 10, storedPolicy{Found: true, Permissions: []Permission{{Resource: "posts:*", Action: "write"}}})
	a := newTestAuthorizer(t, users)
	ctx := context.Background()
	for range 3 { // memoised after the first
		if ok, err := a.Authorize(ctx, "u", "posts:1", "write", nil); err != nil || !ok {
			t.Fatalf("Authorize = %v, %v", ok, err)
		}
	}
	a.memo.wait()
	users.set("u", 11, storedPolicy{Found: true}) // permission revoked
	if ok, _ := a.Authorize(ctx, "u", "posts:1", "write", nil); ok {
		t.Fatal("a memoised allow outlived the generation it was made under")
	}
	users.set("u", 12, storedPolicy{Found: true, Disabled: true, Permissions: []Permission{{Resource: "**", Action: "*"}}})
	if ok, _ := a.Authorize(ctx, "u", "x", "read", nil); ok {
		t.Fatal("a disabled user was allowed")
	}
}

func TestUnknownUserAndBadRequestsAreDenied(t *testing.T) {
	a := newTestAuthorizer(t, &fakeUsers{entries: map[string]shard.Entry{}})
	ctx := context.Background()
	for _, q := range [][3]string{{"nobody", "posts:1", "read"}, {"", "posts:1", "read"}, {"u", "", "read"}, {"u", "a::b", "read"}} {
		if ok, err := a.Authorize(ctx, q[0], q[1], q[2], nil); ok || err != nil {
			t.Errorf("Authorize(%q) = %v, %v", q, ok, err)
		}
	}
}

func TestSourceFailureIsUnavailable(t *testing.T) {
	a := newTestAuthorizer(t, &fakeUsers{err: shard.ErrSourceFailed})
	if _, err := a.Authorize(context.Background(), "u", "x", "read", nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Authorize = %v, want ErrUnavailable", err)
	}
}

// TestQuestionsAreUnambiguous: questions that plain separators would run
// together encode differently; condition order does not matter.
func TestQuestionsAreUnambiguous(t *testing.T) {
	keys := map[string]bool{}
	for _, q := range []struct {
		user     string
		gen      hlc.Gen
		resource string
		action   string
		conds    map[string]string
	}{
		{"alice", 1, "posts:1", "write", nil},
		{"alice\x001", 2, "posts:1", "write", nil},
		{"alice", 1, "posts:1\x00write", "", nil},
		{"alice", 1, "posts:1", "write", map[string]string{"a": "b"}},
		{"alice", 1, "posts:1", "write", map[string]string{"a\x00b": ""}},
		{"alice", 1, "posts:1", "write", map[string]string{"a": "b", "c": "d"}},
		{"alice", 1, "posts:1", "write", map[string]string{"a": "b\x00c", "": "d"}},
		{"alice", 1 << 8, "posts:1", "write", nil},
	} {
		k := string(appendQuestion(nil, q.user, q.gen, q.resource, q.action, q.conds))
		if keys[k] {
			t.Fatalf("two questions encode as %q", k)
		}
		keys[k] = true
	}
	many := map[string]string{}
	for i := range 2 * maxMemoConds { // more than the stack holds
		many[fmt.Sprint("c", i)] = fmt.Sprint(i)
	}
	for range 10 {
		a := appendQuestion(nil, "u", 1, "r", "a", map[string]string{"x": "1", "y": "2"})
		b := appendQuestion(nil, "u", 1, "r", "a", map[string]string{"y": "2", "x": "1"})
		c, d := appendQuestion(nil, "u", 1, "r", "a", many), appendQuestion(nil, "u", 1, "r", "a", many)
		if string(a) != string(b) || string(c) != string(d) {
			t.Fatal("condition order changed the question")
		}
	}
}

// TestMemoComparesTheWholeQuestion: an entry found under a question's hash
// but made for another question is a miss.
func TestMemoComparesTheWholeQuestion(t *testing.T) {
	m, err := newMemo[bool](1<<20, 1000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.close)
	allowed := appendQuestion(nil, "admin", 1, "x", "write", nil)
	asked := appendQuestion(nil, "mallory", 1, "x", "write", nil)
	// As if the two shared a hash: the admin's answer stored under mallory's.
	m.c.Set(xxhash.Sum64(asked), memoEntry[bool]{question: string(allowed), v: true}, 1)
	m.wait()
	if v, ok := m.get(asked); ok || v {
		t.Fatal("an answer to another question was served")
	}
	m.set(asked, false, 0, 0)
	m.wait()
	if v, ok := m.get(asked); !ok || v {
		t.Fatalf("get = %v, %v; want the memoised false", v, ok)
	}
}

// benchAuthorizer returns an authorizer whose user u may read
// orgs:*:docs:** in region eu, with that question already asked (the set
// compiled, the decision memoised), and the question's conditions.
func benchAuthorizer(b *testing.B) (*Authorizer, map[string]string) {
	users := &fakeUsers{entries: map[string]shard.Entry{}}
	users.set("u", 1, storedPolicy{Found: true, Permissions: []Permission{{Resource: "orgs:*:docs:**", Action: "read"}}})
	a, err := NewAuthorizer(users, 1<<24, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(a.Close)
	conds := map[string]string{"region": "eu"}
	_, _ = a.Authorize(context.Background(), "u", "orgs:1:docs:a", "read", conds)
	a.memo.wait()
	return a, conds
}

// BenchmarkAuthorizeMemoised: a repeated question, answered from the memo
// (the users entry is a cache hit, here a map read).
func BenchmarkAuthorizeMemoised(b *testing.B) {
	a, conds := benchAuthorizer(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if ok, _ := a.Authorize(ctx, "u", "orgs:1:docs:a", "read", conds); !ok {
			b.Fatal("denied")
		}
	}
}

// BenchmarkAuthorizeUncached: a question never asked before (a new
// resource each time), decided from the user's compiled permission set and
// memoised (the users entry is a cache hit, here a map read; building the
// resource string is included).
func BenchmarkAuthorizeUncached(b *testing.B) {
	a, conds := benchAuthorizer(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if ok, _ := a.Authorize(ctx, "u", "orgs:"+strconv.Itoa(i)+":docs:a", "read", conds); !ok {
			b.Fatal("denied")
		}
	}
}
