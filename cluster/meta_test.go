package cluster

import (
	"errors"
	"strings"
	"testing"
)

func TestMetaRoundTrip(t *testing.T) {
	m := Meta{Version: ProtocolVersion, PeerAddr: "10.0.0.7:9091", Zone: "eu-1a"}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeMeta(b)
	if err != nil || got != m {
		t.Fatalf("DecodeMeta(%s) = %+v, %v", b, got, err)
	}
}

func TestDecodeMetaRejects(t *testing.T) {
	for _, in := range []string{
		``, `{}`, `null`, `[]`, `{"v":1}`,
		`{"v":2,"peer":"a:1"}`,
		`{"v":1,"peer":"a:0"}`,
		`{"v":1,"peer":"a"}`,
		`{"v":1,"peer":"a:1","extra":true}`,
		`{"v":1,"peer":"a:1"} trailing`,
		`{"v":1,"peer":"a:1","zone":"` + strings.Repeat("z", 65) + `"}`,
		strings.Repeat(" ", 600),
	} {
		if _, err := DecodeMeta([]byte(in)); !errors.Is(err, ErrMeta) {
			t.Errorf("DecodeMeta(%.40q) = %v, want ErrMeta", in, err)
		}
	}
}

// FuzzDecodeMeta: decoding never panics, and what decodes re-encodes to
// something that decodes to the same value.
func FuzzDecodeMeta(f *testing.F) {
	f.Add([]byte(`{"v":1,"peer":"127.0.0.1:9091","zone":"a"}`))
	f.Add([]byte(`{"v":1,"peer":"[::1]:1"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMeta(b)
		if err != nil {
			return
		}
		out, err := m.Encode()
		if err != nil {
			t.Fatalf("decoded %+v but cannot encode it: %v", m, err)
		}
		if again, err := DecodeMeta(out); err != nil || again != m {
			t.Fatalf("round trip %+v → %s → %+v, %v", m, out, again, err)
		}
	})
}
