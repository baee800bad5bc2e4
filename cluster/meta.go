package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
)

// ProtocolVersion is the peer protocol this build speaks. Members that
// advertise another version are left out of the ring: they cannot answer
// this node's forwarded gets.
const ProtocolVersion = 1

// maxMetaLen is memberlist's limit on node metadata.
const maxMetaLen = 512

// ErrMeta marks metadata that could not be decoded or is invalid.
var ErrMeta = errors.New("cluster: bad node metadata")

// Meta is what a node tells the others about itself through gossip.
type Meta struct {
	// Version is the peer protocol version (ProtocolVersion).
	Version int `json:"v"`
	// PeerAddr is host:port of the node's peer gRPC service.
	PeerAddr string `json:"peer"`
	// Zone is the node's failure domain (for example a Kubernetes zone).
	Zone string `json:"zone,omitempty"`
	// Leaving is set by a node about to leave gracefully, so the others
	// count its departure as a leave rather than a failure.
	Leaving bool `json:"leaving,omitempty"`
}

// Encode returns m as gossip metadata.
func (m Meta) Encode() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMeta, err)
	}
	if len(b) > maxMetaLen {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMeta, len(b), maxMetaLen)
	}
	return b, nil
}

// DecodeMeta parses gossip metadata sent by another node. Unknown fields are
// rejected, so a typo cannot pass as an older format.
func DecodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) > maxMetaLen {
		return m, fmt.Errorf("%w: %d bytes, limit %d", ErrMeta, len(b), maxMetaLen)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Meta{}, fmt.Errorf("%w: %w", ErrMeta, err)
	}
	if dec.More() {
		return Meta{}, fmt.Errorf("%w: trailing data", ErrMeta)
	}
	return m, m.validate()
}

func (m Meta) validate() error {
	if m.Version != ProtocolVersion {
		return fmt.Errorf("%w: protocol version %d, this node speaks %d", ErrMeta, m.Version, ProtocolVersion)
	}
	if err := CheckHostPort(m.PeerAddr); err != nil {
		return fmt.Errorf("%w: peer address: %w", ErrMeta, err)
	}
	if len(m.Zone) > 64 {
		return fmt.Errorf("%w: zone longer than 64 bytes", ErrMeta)
	}
	return nil
}

// CheckHostPort accepts host:port with a non-empty host and a port in 1-65535.
func CheckHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || host == "" {
		return fmt.Errorf("%q: want host:port with a port in 1-65535", addr)
	}
	return nil
}
