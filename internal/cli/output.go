package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// printer writes human output and remembers the first write error.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

// keyWidth is the width of the label column of human output.
const keyWidth = 22

// kv writes one "label value" line at the given indent (in steps of two
// spaces).
func (p *printer) kv(indent int, key string, value any) {
	pad := strings.Repeat("  ", indent)
	p.printf("%s%-*s %v\n", pad, keyWidth-len(pad), key, value)
}

// section starts a titled block, separated from the previous one.
func (p *printer) section(title string) { p.printf("\n%s\n", title) }

// writeJSON writes v as indented JSON with a final newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// ts formats a time for human output; the zero time is "-".
func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// nonIntelWarning is the first line of human output made with a
// non-Intel trusted root.
func nonIntelWarning(rootSHA256 string) string {
	return "WARNING: verified against a NON-INTEL trusted root (sha256 " + rootSHA256 +
		"); this result proves nothing about Intel hardware"
}

// listOrNone joins a list, or says "none".
func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}
