package cli

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/refvalue"
)

func lookupRefValues(t *testing.T, dataDir, name string, at time.Time) []refvalue.Value {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(dataDir, "tdproof.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	vals, err := st.RefValues().Lookup(t.Context(), name, at)
	if err != nil {
		t.Fatal(err)
	}
	return vals
}

func TestRefvalueRoundTrip(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	args := []string{"refvalue", "add", "dstack.compose_hash", "0xAB01", "cd02", "--data-dir", data, "--source", "release 1.4",
		"--author", "ops", "--artifact-digest", "sha256:00FF", "--format", "json"}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	added := decodeOut[refValuesOutput](t, o)
	if len(added.Values) != 1 {
		t.Fatalf("added %+v", added)
	}
	v := added.Values[0]
	if v.ID == "" || v.Name != "dstack.compose_hash" || !slices.Equal(v.Values, []string{"ab01", "cd02"}) || v.State != "valid" ||
		v.Provenance != (refvalue.Provenance{Source: "release 1.4", Author: "ops", ArtifactDigest: "sha256:00ff", Created: v.Provenance.Created}) ||
		v.Provenance.Created.IsZero() {
		t.Errorf("added %+v", v)
	}
	args = []string{"refvalue", "add", "tdx.mr_td", "11", "--data-dir", data, "--not-before", "2020-01-01T00:00:00Z", "--expires", "2021-01-01T00:00:00Z"}
	o = invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	if !strings.HasPrefix(o.stdout, "added ") || !strings.Contains(o.stdout, "tdx.mr_td") {
		t.Errorf("human add output %q", o.stdout)
	}

	// The expired value is listed as expired, and Lookup no longer returns it.
	o = invoke(t, nil, "refvalue", "list", "--data-dir", data)
	o.wantCode(t, exitOK)
	lines := strings.Split(strings.TrimSpace(o.stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "STATE") || !strings.Contains(lines[1], "valid") ||
		!strings.Contains(lines[2], "tdx.mr_td") || !strings.Contains(lines[2], "expired") {
		t.Errorf("list:\n%s", o.stdout)
	}
	o = invoke(t, nil, "refvalue", "list", "tdx.mr_td", "--data-dir", data, "--at", "2020-06-01T00:00:00Z", "--format", "json")
	o.wantCode(t, exitOK)
	if l := decodeOut[refValuesOutput](t, o); len(l.Values) != 1 || l.Values[0].State != "valid" || l.MediaType != RefValuesMediaType {
		t.Errorf("list --at: %+v", l)
	}
	o = invoke(t, nil, "refvalue", "list", "tdx.mr_td", "--data-dir", data, "--at", "2019-06-01T00:00:00Z", "--format", "json")
	if l := decodeOut[refValuesOutput](t, o); len(l.Values) != 1 || l.Values[0].State != "not_yet_valid" {
		t.Errorf("list --at before: %+v", l)
	}
	if got := lookupRefValues(t, data, "tdx.mr_td", time.Now()); len(got) != 0 {
		t.Errorf("Lookup returned the expired value: %+v", got)
	}
	if got := lookupRefValues(t, data, "tdx.mr_td", time.Date(2020, 6, 1, 0, 0, 0, 0, time.UTC)); len(got) != 1 {
		t.Errorf("Lookup inside the window: %+v", got)
	}

	// Remove, then it is gone; removing again is a usage error.
	o = invoke(t, nil, "refvalue", "remove", v.ID, "--data-dir", data)
	o.wantCode(t, exitOK)
	if o.stdout != "removed "+v.ID+"\n" {
		t.Errorf("remove output %q", o.stdout)
	}
	o = invoke(t, nil, "refvalue", "list", "--data-dir", data, "--format", "json")
	if l := decodeOut[refValuesOutput](t, o); len(l.Values) != 1 || l.Values[0].Name != "tdx.mr_td" {
		t.Errorf("after remove: %+v", l)
	}
	invoke(t, nil, "refvalue", "remove", v.ID, "--data-dir", data).wantCode(t, exitUsage)
	if got := lookupRefValues(t, data, "dstack.compose_hash", time.Now()); len(got) != 0 {
		t.Errorf("Lookup after remove: %+v", got)
	}
}

func TestRefvalueFromMeasure(t *testing.T) {
	t.Parallel()
	dir := writeTestImage(t)
	args := []string{"measure", "--image", dir, "--memory", "2G", "--cpus", "2", "--qemu-version", "8.2.2", "--format", "json"}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	m := decodeOut[measureOutput](t, o)
	file := writeFile(t, t.TempDir(), "m.json", []byte(o.stdout))

	data := t.TempDir()
	args = []string{"refvalue", "add", "--from-measure", file, "--data-dir", data, "--author", "ops", "--expires", "2200-01-01T00:00:00Z", "--format", "json"}
	o = invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	added := decodeOut[refValuesOutput](t, o)
	got := map[string]string{}
	for _, v := range added.Values {
		if len(v.Values) != 1 || v.Provenance.Source != "tdproof measure" || v.Provenance.Author != "ops" ||
			!strings.HasPrefix(v.Provenance.ArtifactDigest, "sha256:") || v.Expires.Year() != 2200 {
			t.Errorf("value %+v", v)
		}
		got[v.Name] = v.Values[0]
	}
	want := map[string]string{"tdx.mr_td": m.MRTD}
	if m.OSImageHash != "" {
		want["dstack.os_image_hash"] = m.OSImageHash
	}
	for _, r := range m.RTMRs {
		if r.Incomplete == "" {
			want["tdx.rtmr_"+string(rune('0'+r.Index))] = r.Value
		}
	}
	if len(got) != len(want) || len(got) < 3 {
		t.Fatalf("added %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != refvalue.NormalizeValue(w) {
			t.Errorf("%s = %s, want %s", k, got[k], w)
		}
	}
	if l := lookupRefValues(t, data, "tdx.mr_td", time.Now()); len(l) != 1 {
		t.Errorf("Lookup tdx.mr_td: %+v", l)
	}

	// Not measure output: malformed (3); unreadable: usage (2).
	bad := writeFile(t, t.TempDir(), "bad.json", []byte(`{"media_type":"application/json"}`))
	invoke(t, nil, "refvalue", "add", "--from-measure", bad, "--data-dir", data).wantCode(t, exitMalformed)
	invoke(t, nil, "refvalue", "add", "--from-measure", filepath.Join(data, "missing.json"), "--data-dir", data).wantCode(t, exitUsage)
}

func TestRefvalueUsage(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	for _, args := range [][]string{
		{"refvalue"},
		{"refvalue", "add", "tdx.mr_td"},
		{"refvalue", "add", "--from-measure", "x.json", "tdx.mr_td", "00"},
		{"refvalue", "add", "tdx.mr_td", "00", "--expires", "2020-01-01T00:00:00Z", "--not-before", "2021-01-01T00:00:00Z"},
		{"refvalue", "add", "tdx.mr_td", "00", "--artifact-digest", "nohex"},
		{"refvalue", "add", "tdx.mr_td", "00", "--expires", "soon"},
		{"refvalue", "add", "tdx.mr_td", "00", "--expires", "2999-01-01T00:00:00Z"},
		{"refvalue", "list", "a", "b"},
		{"refvalue", "remove"},
		{"refvalue", "remove", "abc"},
	} {
		invoke(t, nil, append(args, "--data-dir", data)...).wantCode(t, exitUsage, args...)
	}
	// Nothing was stored by the failed commands.
	if entries, _ := os.ReadDir(data); len(entries) > 0 {
		o := invoke(t, nil, "refvalue", "list", "--data-dir", data, "--format", "json")
		if l := decodeOut[refValuesOutput](t, o); len(l.Values) != 0 {
			t.Errorf("stored %+v", l.Values)
		}
	}
}
