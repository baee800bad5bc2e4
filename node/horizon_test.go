package node

import (
	"testing"
	"time"

	"github.com/avion/authnode/auth"
)

// TestWatermarkHorizon: a watermark is kept for as long as a token it
// revokes could still validate: the issuer's lifetime plus its leeway, or
// MaxTokenLifetime when that is longer.
func TestWatermarkHorizon(t *testing.T) {
	v, err := auth.NewValidator([]auth.Issuer{
		{Issuer: "a", Audiences: []string{"x"}, MaxLifetime: 48 * time.Hour, Leeway: time.Minute},
		{Issuer: "b", Audiences: []string{"x"}, MaxLifetime: time.Hour},
	}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig("n")
	n := &Node{cfg: cfg}
	if got := n.watermarkHorizon(); got != 24*time.Hour {
		t.Fatalf("without issuers: %v, want MaxTokenLifetime", got)
	}
	n.cfg.Validator = v
	if got := n.watermarkHorizon(); got != 48*time.Hour+time.Minute {
		t.Fatalf("horizon %v, want the longest lifetime plus its leeway", got)
	}
}
