package redisfallback

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/avion/authnode/hlc"
)

// Errors of decode and decodeMessage. A value that fails to decode is
// treated as missing.
var (
	errShort   = errors.New("redisfallback: value too short")
	errVersion = errors.New("redisfallback: unknown value version")
	errLength  = errors.New("redisfallback: value length mismatch")
)

// copyV1 is the only value encoding so far:
//
//	version  1 byte  (copyV1)
//	gen      8 bytes big-endian hlc.Gen
//	expires  8 bytes big-endian unix nanoseconds
//	length   4 bytes big-endian, the number of bytes that follow
//	value    length bytes
const (
	copyV1    = 1
	copyHead  = 1 + 8 + 8 + 4
	maxLength = 1<<32 - 1
)

// copyVal is one entry as stored in Redis.
type copyVal struct {
	gen     hlc.Gen
	expires time.Time
	value   []byte
}

// encode returns c in the copyV1 encoding. Values longer than 4 GiB are
// not representable; callers never cache such values.
func encode(c copyVal) []byte {
	b := make([]byte, copyHead, copyHead+len(c.value))
	b[0] = copyV1
	binary.BigEndian.PutUint64(b[1:], uint64(c.gen))
	binary.BigEndian.PutUint64(b[9:], uint64(c.expires.UnixNano()))
	binary.BigEndian.PutUint32(b[17:], uint32(min(len(c.value), maxLength)))
	return append(b, c.value...)
}

// decode parses a copyV1 value. The returned value aliases b.
func decode(b []byte) (copyVal, error) {
	if len(b) < copyHead {
		return copyVal{}, fmt.Errorf("%w: %d bytes", errShort, len(b))
	}
	if b[0] != copyV1 {
		return copyVal{}, fmt.Errorf("%w: %d", errVersion, b[0])
	}
	n := binary.BigEndian.Uint32(b[17:])
	if uint64(n) != uint64(len(b)-copyHead) {
		return copyVal{}, fmt.Errorf("%w: header says %d, %d follow", errLength, n, len(b)-copyHead)
	}
	return copyVal{
		gen:     hlc.Gen(binary.BigEndian.Uint64(b[1:])),
		expires: time.Unix(0, int64(binary.BigEndian.Uint64(b[9:]))),
		value:   b[copyHead:],
	}, nil
}

// Pub/sub messages are a version byte, the sender's instance id and the
// payload.
const (
	msgV1   = 1
	idLen   = 16
	msgHead = 1 + idLen
)

type instanceID [idLen]byte

func encodeMessage(id instanceID, payload []byte) []byte {
	b := make([]byte, 0, msgHead+len(payload))
	b = append(b, msgV1)
	b = append(b, id[:]...)
	return append(b, payload...)
}

// decodeMessage splits a message into sender and payload; the payload
// aliases b.
func decodeMessage(b []byte) (instanceID, []byte, error) {
	var id instanceID
	if len(b) < msgHead {
		return id, nil, fmt.Errorf("%w: message of %d bytes", errShort, len(b))
	}
	if b[0] != msgV1 {
		return id, nil, fmt.Errorf("%w: message version %d", errVersion, b[0])
	}
	copy(id[:], b[1:msgHead])
	return id, b[msgHead:], nil
}
