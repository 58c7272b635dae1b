package refvalue

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// MeasureMediaType is the media type of `tdproof measure --format json`
// output, the input of FromMeasure.
const MeasureMediaType = "application/vnd.tdproof.measure.v1+json"

type measureDoc struct {
	MediaType   string `json:"media_type"`
	OSImageHash string `json:"os_image_hash"`
	MRTD        string `json:"mrtd"`
	RTMRs       []struct {
		Index      int    `json:"index"`
		Value      string `json:"value"`
		Incomplete string `json:"incomplete"`
	} `json:"rtmrs"`
}

// FromMeasure turns the JSON output of `tdproof measure --format json`
// into reference values: tdx.mr_td, tdx.rtmr_0 … tdx.rtmr_2 for each
// register that was computed completely (an RTMR reported as incomplete,
// e.g. RTMR0 without ACPI tables, is left out), and dstack.os_image_hash
// when the document has one. Every value gets prov; if
// prov.ArtifactDigest is empty it is set to the SHA-256 of doc, and if
// prov.Source is empty it is "tdproof measure". NotBefore and Expires are
// left zero for the caller to set. The values are normalized (see
// Normalize).
func FromMeasure(doc []byte, prov Provenance) ([]Value, error) {
	var d measureDoc
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("%w: measure output: %w", ErrInvalid, err)
	}
	if d.MediaType != MeasureMediaType {
		return nil, fmt.Errorf("%w: measure output: media_type %q, want %q", ErrInvalid, d.MediaType, MeasureMediaType)
	}
	if prov.Source == "" {
		prov.Source = "tdproof measure"
	}
	if prov.ArtifactDigest == "" {
		h := sha256.Sum256(doc)
		prov.ArtifactDigest = "sha256:" + hex.EncodeToString(h[:])
	}
	var out []Value
	add := func(name, val string, size int) error {
		b, err := hex.DecodeString(val)
		if err != nil || len(b) != size {
			return fmt.Errorf("%w: measure output: %s %q is not %d bytes of hex", ErrInvalid, name, val, size)
		}
		v, err := Normalize(Value{Name: name, Values: []string{val}, Provenance: prov})
		if err != nil {
			return err
		}
		out = append(out, v)
		return nil
	}
	if err := add("tdx.mr_td", d.MRTD, 48); err != nil {
		return nil, err
	}
	seen := map[int]bool{}
	for _, r := range d.RTMRs {
		if r.Index < 0 || r.Index > 2 || seen[r.Index] {
			return nil, fmt.Errorf("%w: measure output: unexpected RTMR index %d", ErrInvalid, r.Index)
		}
		seen[r.Index] = true
		if r.Incomplete != "" || r.Value == "" {
			continue
		}
		if err := add(fmt.Sprintf("tdx.rtmr_%d", r.Index), r.Value, 48); err != nil {
			return nil, err
		}
	}
	if d.OSImageHash != "" {
		if err := add("dstack.os_image_hash", d.OSImageHash, 32); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ForTD returns the reference values that pin a TD's code to the given
// registers: tdx.mr_td and tdx.rtmr_0 … tdx.rtmr_2, each with prov (Source
// "manual" when empty). Use it with the registers of a TD known to be good
// (a quote from a reference boot, or a simulated TD in tests); prefer
// FromMeasure, which computes them from the image.
func ForTD(mrtd [48]byte, rtmrs [4][48]byte, prov Provenance) []Value {
	if prov.Source == "" {
		prov.Source = "manual"
	}
	out := []Value{{Name: "tdx.mr_td", Values: []string{hex.EncodeToString(mrtd[:])}, Provenance: prov}}
	for i := range 3 {
		out = append(out, Value{Name: fmt.Sprintf("tdx.rtmr_%d", i), Values: []string{hex.EncodeToString(rtmrs[i][:])}, Provenance: prov})
	}
	return out
}
