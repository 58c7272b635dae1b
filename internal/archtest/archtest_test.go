package archtest

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/tdproof/tdproof"

// layers maps each library package to its layer (architecture.md).
var layers = map[string]string{
	"quote": "parse", "pckcert": "parse", "collateral": "parse", "eventlog": "parse", "jcs": "parse", "pinnedcert": "parse", "jsonappend": "parse", "jsonscan": "parse",
	"measure": "derive",
	"pcs":     "fetch", "pcs/pcscache": "fetch", "amdkds": "fetch", "revocation/crlcache": "fetch",
	"dcap": "verify", "dstack": "verify", "snp": "verify", "nitro": "verify", "tpm": "verify", "revocation": "verify",
	"claims": "appraise", "refvalue": "appraise", "policy": "appraise", "ear": "appraise",
	"policy/rego": "appraise",
	"verifier":    "orchestrate",
}

var ioPackages = []string{"net/http", "database/sql", "log/slog"}

// directOnly lists packages whose approved dependency links I/O packages
// it never calls: for them only direct imports are checked. policy/rego
// wraps OPA's v1/rego (approved), which links net/http and log/slog for
// builtins tdproof removes (http.send, …).
var directOnly = map[string]bool{"policy/rego": true}

type pkg struct {
	ImportPath string
	Deps       []string
	Imports    []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "-deps=false", "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list returned no packages")
	}
	return pkgs
}

func TestImportRules(t *testing.T) {
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		base := path.Base(rel)
		if slices.Contains([]string{"util", "utils", "common", "types", "models", "helpers"}, base) {
			t.Errorf("%s: grab-bag package names are forbidden", p.ImportPath)
		}
		layer, ok := layers[rel]
		if !ok {
			continue
		}
		deps := p.Deps
		if directOnly[rel] {
			deps = p.Imports
		}
		for _, dep := range deps {
			// The fetch layer (pcs, pcs/pcscache) is the I/O layer that
			// architecture.md allows net/http and log/slog.
			if layer != "fetch" && slices.Contains(ioPackages, dep) {
				t.Errorf("%s (%s layer) depends on %s", p.ImportPath, layer, dep)
			}
		}
		for _, imp := range p.Imports {
			irel, internal := strings.CutPrefix(imp, module+"/")
			if !internal {
				continue
			}
			if layer == "parse" && (layers[irel] == "verify" || layers[irel] == "appraise" || layers[irel] == "orchestrate") {
				t.Errorf("%s (parse) imports %s (%s)", p.ImportPath, imp, layers[irel])
			}
			if rel == "dcap" && irel == "policy" {
				t.Errorf("dcap imports policy: a TCB status is data, not a decision")
			}
			if layer != "" && strings.HasPrefix(irel, "internal/") && irel != "internal/testvectors" {
				t.Errorf("%s (%s layer) imports service package %s", p.ImportPath, layer, imp)
			}
		}
	}
}
