package redisfallback

import (
	"testing"
	"time"
)

func TestPendingDeletes(t *testing.T) {
	var d deletes
	t0 := time.Unix(1000, 0)
	user := target{key: "p:u:1"}
	field := target{key: "p:u:2", field: "perms"}
	if !d.add(user, t0.Add(time.Minute), 10) || !d.add(field, t0.Add(time.Second), 10) {
		t.Fatal("add refused below the limit")
	}
	for _, tc := range []struct {
		at   target
		want bool
	}{
		{target{"p:u:1", "perms"}, true},     // the whole hash is being deleted
		{target{"p:u:2", "perms"}, true},     // this field is
		{target{"p:u:2", "sessions"}, false}, // another field is not
		{target{"p:u:3", "perms"}, false},
	} {
		if got := d.blocks(tc.at); got != tc.want {
			t.Errorf("blocks(%v) = %v, want %v", tc.at, got, tc.want)
		}
	}

	batch, all, expired := d.take(t0, time.Second, 10)
	if len(batch) != 2 || all != nil || expired != 0 {
		t.Fatalf("first take = %v %v %d, want both deletes", batch, all, expired)
	}
	if batch, _, _ := d.take(t0.Add(time.Second/2), time.Second, 10); len(batch) != 0 {
		t.Errorf("deletes retried before RetryInterval: %v", batch)
	}
	// After its deadline a delete is given up.
	batch, _, expired = d.take(t0.Add(2*time.Second), time.Second, 10)
	if len(batch) != 1 || batch[0].at != user || expired != 1 {
		t.Fatalf("take after the field's deadline = %v, %d expired", batch, expired)
	}
	// A delete issued again while in flight is kept when the first lands.
	d.add(user, t0.Add(time.Minute), 10)
	d.done(batch[0])
	if d.len() != 1 {
		t.Fatalf("len = %d after an outdated done, want 1", d.len())
	}
	batch, _, _ = d.take(t0.Add(2*time.Second), time.Second, 10)
	d.done(batch[0])
	if d.len() != 0 || d.blocks(target{"p:u:1", "perms"}) {
		t.Errorf("delete still pending after it landed")
	}
}

func TestPendingDeleteAllBlocksEverything(t *testing.T) {
	var d deletes
	t0 := time.Unix(1000, 0)
	d.addAll(t0.Add(time.Minute))
	if !d.blocks(target{"any", "v"}) {
		t.Error("a pending DeleteAll does not block reads")
	}
	_, all, _ := d.take(t0, time.Second, 10)
	if all == nil {
		t.Fatal("DeleteAll not due")
	}
	d.doneAll(all.seq)
	if d.len() != 0 || d.blocks(target{"any", "v"}) {
		t.Error("DeleteAll still pending after it landed")
	}
}

func TestPendingDeletesLimit(t *testing.T) {
	var d deletes
	deadline := time.Unix(1000, 0)
	if !d.add(target{key: "a"}, deadline, 1) {
		t.Fatal("first delete refused")
	}
	if d.add(target{key: "b"}, deadline, 1) {
		t.Error("delete beyond the limit accepted")
	}
	if !d.add(target{key: "a"}, deadline, 1) {
		t.Error("re-issuing a pending delete was refused at the limit")
	}
}
