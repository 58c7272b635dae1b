package pcs

import (
	"context"
	"encoding/json"
)

// FMSPCEntry is one entry of the PCS fmspcs list.
type FMSPCEntry struct {
	// FMSPC is the family-model-stepping-platform-custom SKU.
	FMSPC [6]byte
	// Platform is Intel's platform category ("E3", "E5", "client", …).
	Platform string
}

// DecodeFMSPCs parses the body of the fmspcs route:
// [{"fmspc":"00906ED50000","platform":"E3"}, …]. Errors wrap
// ErrInvalidResponse.
func DecodeFMSPCs(body []byte) ([]FMSPCEntry, error) {
	var raw []struct {
		FMSPC    *string `json:"fmspc"`
		Platform string  `json:"platform"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, invalid(ErrInvalidResponse, "fmspc list: %v", err)
	}
	out := make([]FMSPCEntry, 0, len(raw))
	for i, r := range raw {
		if r.FMSPC == nil {
			return nil, invalid(ErrInvalidResponse, "fmspc list: entry %d has no fmspc", i)
		}
		f, err := ParseFMSPC(*r.FMSPC)
		if err != nil {
			return nil, invalid(ErrInvalidResponse, "fmspc list: entry %d: %v", i, err)
		}
		out = append(out, FMSPCEntry{FMSPC: f, Platform: r.Platform})
	}
	return out, nil
}

// FMSPCs lists the FMSPCs the service knows (GET
// /sgx/certification/v4/fmspcs). The list is not signed.
func (c *Client) FMSPCs(ctx context.Context) ([]FMSPCEntry, error) {
	const what = "fmspc list"
	u := c.base + "/sgx/certification/v4/fmspcs"
	resp, err := c.get(ctx, what, u, nil)
	if err != nil {
		return nil, err
	}
	l, err := DecodeFMSPCs(resp.body)
	if err != nil {
		return nil, &Error{Item: what, URL: u, StatusCode: resp.status, Attempts: resp.attempts, Err: err}
	}
	return l, nil
}
