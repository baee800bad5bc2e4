package redisfallback

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestCodecRoundTrip(t *testing.T) {
	for _, v := range [][]byte{nil, {}, []byte("x"), bytes.Repeat([]byte{0xff}, 1<<16)} {
		in := copyVal{gen: 1<<63 + 5, expires: time.Unix(1700000000, 123), value: v}
		out, err := decode(encode(in))
		if err != nil {
			t.Fatalf("decode(encode(%d bytes)): %v", len(v), err)
		}
		if out.gen != in.gen || !out.expires.Equal(in.expires) || !bytes.Equal(out.value, in.value) {
			t.Errorf("round trip of %d bytes changed the value", len(v))
		}
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	good := encode(copyVal{gen: 7, expires: time.Unix(1, 0), value: []byte("abc")})
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, errShort},
		{"header cut", good[:copyHead-1], errShort},
		{"version", append([]byte{2}, good[1:]...), errVersion},
		{"truncated value", good[:len(good)-1], errLength},
		{"trailing bytes", append(append([]byte{}, good...), 'x'), errLength},
		{"plain string", []byte("not an encoded copy at all"), errVersion},
	} {
		if _, err := decode(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestMessageRoundTrip(t *testing.T) {
	id := instanceID{1, 2, 3}
	from, payload, err := decodeMessage(encodeMessage(id, []byte("inv u1")))
	if err != nil || from != id || string(payload) != "inv u1" {
		t.Errorf("round trip = %v %q %v", from, payload, err)
	}
	for _, b := range [][]byte{nil, {msgV1}, append([]byte{9}, make([]byte, idLen)...)} {
		if _, _, err := decodeMessage(b); err == nil {
			t.Errorf("decodeMessage(%q) accepted a malformed message", b)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(copyVal{gen: 1, expires: time.Unix(2, 3), value: []byte("v")}))
	f.Add([]byte{copyV1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decode(b)
		if err != nil {
			return
		}
		if again := encode(c); !bytes.Equal(again, b) {
			t.Fatalf("encode(decode(b)) = %x, want %x", again, b)
		}
	})
}
