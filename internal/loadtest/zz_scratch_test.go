package loadtest

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestZZTokenSize(t *testing.T) {
	b := startBroker(t, "sqlite://"+t.TempDir()+"/x.db")
	c := client(1)
	tok, _, err := b.handshake(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	p, _ := base64.RawURLEncoding.DecodeString(parts[1])
	t.Logf("token %d bytes, payload %d: %s", len(tok), len(p), p)
}
