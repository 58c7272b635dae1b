package cli

import (
	"strings"
	"testing"

	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/internal/testvectors"
)

// inspectVectors lists every shared quote with facts to check.
var inspectVectors = []struct {
	path     []string
	version  uint16
	tee      string
	td15     bool
	fmspc    string
	ca       string
	trailing int
}{
	{[]string{"dcap", "tdx-v4-b0c06f", "quote.bin"}, 4, "TDX", false, "b0c06f000000", "platform", 70},
	{[]string{"dcap", "sgx-v3-00a067", "quote.bin"}, 3, "SGX", false, "00a067110000", "processor", 0},
	{[]string{"dcap", "tdx-v5-90c06f", "quote.bin"}, 5, "TDX", true, "90c06f000000", "", -1},
	{[]string{"dcap", "tdx-v4-90c06f-dstack", "quote.bin"}, 4, "TDX", false, "90c06f000000", "", -1},
	{[]string{"dcap", "tdx-v4-50806f-pcs", "quote.bin"}, 4, "TDX", false, "50806f000000", "", 39},
	{[]string{"dcap", "parse-only", "tappd-tdx-v4.hex"}, 4, "TDX", false, "", "", -1},
	{[]string{"dcap", "parse-only", "tdx-v4-0x.hex"}, 4, "TDX", false, "", "", -1},
}

func TestInspectVectors(t *testing.T) {
	t.Parallel()
	for _, v := range inspectVectors {
		t.Run(strings.Join(v.path[1:], "/"), func(t *testing.T) {
			t.Parallel()
			path := testvectors.Path(t, v.path...)

			// Human output.
			o := invoke(t, nil, "quote", "inspect", path)
			o.wantCode(t, exitOK, "quote", "inspect", path)
			want := []string{
				"Signatures             valid up to the Intel SGX Root CA (sha256 " + dcap.IntelRootSHA256 + ")",
				"(Intel)", "QE report", "Certification data", "PCK certificate chain (type 5)", "FMSPC", "PCE-ID", "CA type",
				"SGX type", "TCB components", "PCESVN",
			}
			if v.tee == "TDX" {
				want = append(want, "MRTD", "RTMR0", "RTMR3", "MRCONFIGID", "MROWNER ", "MROWNERCONFIG", "MRSEAM", "MRSIGNERSEAM",
					"TEE_TCB_SVN", "TDATTRIBUTES", "DEBUG", "SEPT_VE_DISABLE", "PKS", "KL", "PERFMON", "XFAM", "REPORTDATA")
			} else {
				want = append(want, "Enclave report", "MRENCLAVE", "MRSIGNER", "ISVPRODID", "ISVSVN", "ATTRIBUTES")
			}
			if v.td15 {
				want = append(want, "TEE_TCB_SVN2", "MRSERVICETD")
			}
			if v.fmspc != "" {
				want = append(want, "FMSPC                "+v.fmspc)
			}
			for _, w := range want {
				if !strings.Contains(o.stdout, w) {
					t.Errorf("inspect output lacks %q", w)
				}
			}
			if strings.Contains(o.stdout, "WARNING") {
				t.Errorf("inspect with the Intel root prints a WARNING")
			}

			// JSON output.
			o = invoke(t, nil, "quote", "inspect", "--format", "json", path)
			o.wantCode(t, exitOK, "quote", "inspect", "--format", "json", path)
			var f quoteFacts
			decodeJSON(t, o, &f)
			if f.MediaType != InspectMediaType {
				t.Errorf("media_type = %q, want %q", f.MediaType, InspectMediaType)
			}
			if f.Header.Version != v.version || f.Header.TEEType != v.tee || !f.Header.QEVendorIntel {
				t.Errorf("header = %+v, want version %d, %s, Intel QE", f.Header, v.version, v.tee)
			}
			s := f.Signatures
			if !s.Checked || !s.Valid || !s.IntelRoot || s.TrustedRootSHA256 != dcap.IntelRootSHA256 || s.Error != nil {
				t.Errorf("signatures = %+v, want valid up to the Intel root", s)
			}
			if (f.TD != nil) != (v.tee == "TDX") || (f.Enclave != nil) != (v.tee == "SGX") {
				t.Errorf("td = %v, enclave = %v for a %s quote", f.TD != nil, f.Enclave != nil, v.tee)
			}
			if f.TD != nil && f.TD.TD15 != v.td15 {
				t.Errorf("td15 = %v, want %v", f.TD.TD15, v.td15)
			}
			if v.td15 && (f.TD.MRServiceTD == "" || f.TD.TEETCBSVN2 == "") {
				t.Errorf("TD 1.5 quote without mr_service_td / tee_tcb_svn2")
			}
			p := f.Certification.PCK
			if p == nil || f.Certification.ChainLength != 3 {
				t.Fatalf("certification = %+v, want a 3-certificate PCK chain", f.Certification)
			}
			if v.fmspc != "" && p.FMSPC != v.fmspc {
				t.Errorf("pck.fmspc = %q, want %q", p.FMSPC, v.fmspc)
			}
			if v.ca != "" && p.CAType != v.ca {
				t.Errorf("pck.ca_type = %q, want %q", p.CAType, v.ca)
			}
			if len(p.TCBComponents) != 16 {
				t.Errorf("pck.sgx_tcb_components has %d entries", len(p.TCBComponents))
			}
			if v.trailing >= 0 && f.TrailingBytes != v.trailing {
				t.Errorf("trailing_bytes = %d, want %d", f.TrailingBytes, v.trailing)
			}
		})
	}
}

func TestInspectDetails(t *testing.T) {
	t.Parallel()
	// The 50806f quote lacks SEPT_VE_DISABLE; b0c06f sets only it.
	o := invoke(t, nil, "quote", "inspect", testvectors.Path(t, "dcap", "tdx-v4-50806f-pcs", "quote.bin"))
	o.wantCode(t, exitOK)
	if !strings.Contains(o.stdout, "SEPT_VE_DISABLE    no") {
		t.Errorf("50806f: SEPT_VE_DISABLE not reported as no:\n%s", o.stdout)
	}
	if !strings.Contains(o.stdout, "39 trailing bytes") {
		t.Errorf("50806f: trailing bytes not reported")
	}
	o = invoke(t, nil, "quote", "inspect", testvectors.Path(t, "dcap", "tdx-v4-b0c06f", "quote.bin"))
	if !strings.Contains(o.stdout, "TDATTRIBUTES         0000001000000000 (SEPT_VE_DISABLE)") {
		t.Errorf("b0c06f: TD attributes not decoded:\n%s", o.stdout)
	}
	if !strings.Contains(o.stdout, "70 trailing bytes after the signature data (all zero, not signed)") {
		t.Errorf("b0c06f: trailing bytes not reported")
	}
}

func TestInspectStdin(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"tappd-tdx-v4.hex", "tdx-v4-0x.hex"} {
		hexText := testvectors.ReadFile(t, "dcap", "parse-only", name)
		o := invoke(t, hexText, "quote", "inspect", "-")
		o.wantCode(t, exitOK, "quote", "inspect", "-", "<", name)
		if !strings.Contains(o.stdout, "valid up to the Intel SGX Root CA") {
			t.Errorf("%s on stdin: signatures not valid:\n%s", name, o.stdout)
		}
	}
	raw, _ := readVectorQuote(t, "sgx-v3-00a067")
	o := invoke(t, raw, "quote", "inspect", "--format=json", "-")
	o.wantCode(t, exitOK)
}

func TestInspectMalformed(t *testing.T) {
	t.Parallel()
	raw, q := readVectorQuote(t, "tdx-v4-b0c06f")
	tests := []struct {
		name     string
		input    []byte
		wantExit int
		wantErr  string
	}{
		{"truncated", raw[:100], exitMalformed, "tdproof: error: quote:"},
		{"empty", nil, exitMalformed, "tdproof: error: quote:"},
		{"bad hex", []byte("0x04000200zz"), exitMalformed, "tdproof: error: "},
		{"version 2", append([]byte{2, 0}, raw[2:]...), exitMalformed, "tdproof: error: quote:"},
		{"flipped quote signature", flipByte(raw, len(q.Signed())+4+5), exitNotAuthentic, "tdproof: error: dcap:"},
		{"flipped PCK chain byte", flipPCK(t, raw), exitNotAuthentic, "tdproof: error: dcap:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := invoke(t, tc.input, "quote", "inspect", "-")
			o.wantCode(t, tc.wantExit, "quote", "inspect", "-")
			if !strings.HasPrefix(o.stderr, tc.wantErr) {
				t.Errorf("stderr = %q, want prefix %q", o.stderr, tc.wantErr)
			}
			if tc.wantExit == exitNotAuthentic {
				// The facts are still printed, with the verdict on signatures.
				if !strings.Contains(o.stdout, "Signatures             INVALID (not_authentic)") {
					t.Errorf("stdout lacks INVALID signatures line:\n%s", o.stdout)
				}
				o = invoke(t, tc.input, "quote", "inspect", "--format", "json", "-")
				o.wantCode(t, exitNotAuthentic)
				var f quoteFacts
				decodeJSON(t, o, &f)
				if f.Signatures.Valid || f.Signatures.Error == nil || f.Signatures.Error.Code != codeNotAuthentic {
					t.Errorf("signatures = %+v, want invalid with code not_authentic", f.Signatures)
				}
			} else if o.stdout != "" {
				t.Errorf("stdout = %q, want empty", o.stdout)
			}
		})
	}
}

func TestInspectTrustedRootMalformed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := writeFile(t, dir, "root.pem", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	quotePath := testvectors.Path(t, "dcap", "tdx-v4-b0c06f", "quote.bin")
	o := invoke(t, nil, "quote", "inspect", "--trusted-root", bad, quotePath)
	o.wantCode(t, exitMalformed)
	o = invoke(t, nil, "quote", "inspect", "--trusted-root", writeFile(t, dir, "empty.pem", []byte("not a certificate")), quotePath)
	o.wantCode(t, exitMalformed)
	// The Intel root given explicitly behaves like the pinned one.
	intel := testvectors.Path(t, "intel", "IntelSGXRootCA.pem")
	o = invoke(t, nil, "quote", "inspect", "--trusted-root", intel, quotePath)
	o.wantCode(t, exitOK)
	if strings.Contains(o.stdout, "WARNING") || !strings.Contains(o.stdout, "valid up to the Intel SGX Root CA") {
		t.Errorf("inspect --trusted-root <Intel root>:\n%s", o.stdout)
	}
}

// flipByte returns a copy of b with the byte at i inverted.
func flipByte(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0xff
	return c
}

// flipPCK flips a byte inside the base64 of the PCK leaf's signature area.
func flipPCK(tb testing.TB, raw []byte) []byte {
	tb.Helper()
	i := strings.Index(string(raw), "-----END CERTIFICATE-----")
	if i < 10 {
		tb.Fatal("no PEM in quote")
	}
	c := append([]byte(nil), raw...)
	// The last base64 characters before the END line encode the leaf's
	// signature; swap one for another valid base64 character.
	j := i - 6
	if c[j] == 'A' {
		c[j] = 'B'
	} else {
		c[j] = 'A'
	}
	return c
}
