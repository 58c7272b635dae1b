package refvalue_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/refvalue"
)

// measureJSON is `tdproof measure --format json` output (trimmed: events
// and file details do not matter to FromMeasure) with RTMR0 incomplete.
var measureJSON = `{
  "media_type": "application/vnd.tdproof.measure.v1+json",
  "image_dir": "dstack-0.6.0",
  "image_version": "0.6.0",
  "os_image_hash": "` + strings.Repeat("0d", 32) + `",
  "firmware": {"path": "ovmf.fd", "size": 4, "sha256": "` + strings.Repeat("11", 32) + `"},
  "kernel": {"path": "bzImage", "size": 4, "sha256": "` + strings.Repeat("22", 32) + `"},
  "initrd": {"path": "initramfs.cpio.gz", "size": 4, "sha256": "` + strings.Repeat("33", 32) + `"},
  "kernel_cmdline": "console=ttyS0",
  "machine": {"cpus": 2, "memory_size": 2147483648, "qemu_version": "8.2.2"},
  "mrtd": "` + strings.Repeat("AA", 48) + `",
  "page_order": "two_pass",
  "mrtd_candidates": {"single_pass": "` + strings.Repeat("ab", 48) + `", "two_pass": "` + strings.Repeat("aa", 48) + `"},
  "rtmrs": [
    {"index": 0, "incomplete": "ACPI tables not given", "events": []},
    {"index": 1, "value": "` + strings.Repeat("b1", 48) + `", "events": []},
    {"index": 2, "value": "` + strings.Repeat("b2", 48) + `", "events": []}
  ],
  "acpi_source": "none",
  "notes": []
}`

func TestFromMeasure(t *testing.T) {
	t.Parallel()
	vals, err := refvalue.FromMeasure([]byte(measureJSON), refvalue.Provenance{Author: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(measureJSON))
	want := map[string]string{
		"tdx.mr_td":            strings.Repeat("aa", 48),
		"tdx.rtmr_1":           strings.Repeat("b1", 48),
		"tdx.rtmr_2":           strings.Repeat("b2", 48),
		"dstack.os_image_hash": strings.Repeat("0d", 32),
	}
	if len(vals) != len(want) {
		t.Fatalf("FromMeasure: %d values, want %d: %+v", len(vals), len(want), vals)
	}
	for _, v := range vals {
		if len(v.Values) != 1 || v.Values[0] != want[v.Name] {
			t.Errorf("%s = %q, want %q", v.Name, v.Values, want[v.Name])
		}
		p := v.Provenance
		if p.Source != "tdproof measure" || p.Author != "ci" || p.ArtifactDigest != "sha256:"+hex.EncodeToString(sum[:]) {
			t.Errorf("%s provenance = %+v", v.Name, p)
		}
	}
	// The values go into a store as they are.
	s := refvalue.NewMemoryStore()
	for _, v := range vals {
		if _, err := s.Add(t.Context(), v); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFromMeasureErrors(t *testing.T) {
	t.Parallel()
	for name, doc := range map[string]string{
		"not json":       "{",
		"media type":     strings.Replace(measureJSON, "measure.v1", "measure-lite.v1", 1),
		"short mrtd":     strings.Replace(measureJSON, strings.Repeat("AA", 48), "AA", 1),
		"bad rtmr":       strings.Replace(measureJSON, strings.Repeat("b1", 48), "zz", 1),
		"rtmr index":     strings.Replace(measureJSON, `"index": 2`, `"index": 3`, 1),
		"duplicate rtmr": strings.Replace(measureJSON, `"index": 2`, `"index": 1`, 1),
		"os image hash":  strings.Replace(measureJSON, strings.Repeat("0d", 32), "0d", 1),
	} {
		if v, err := refvalue.FromMeasure([]byte(doc), refvalue.Provenance{}); !errors.Is(err, refvalue.ErrInvalid) || v != nil {
			t.Errorf("FromMeasure(%s) = %v, %v; want ErrInvalid", name, v, err)
		}
	}
}
