package cli

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tdproof/tdproof/collateral"
)

// Output formats.
const (
	formatText = "text"
	formatJSON = "json"
)

// formatValue is the --format flag: text or json.
type formatValue struct{ v string }

func newFormatValue() *formatValue { return &formatValue{v: formatText} }

func (f *formatValue) String() string { return f.v }
func (f *formatValue) Type() string   { return "format" }
func (f *formatValue) Set(s string) error {
	switch s = strings.ToLower(strings.TrimSpace(s)); s {
	case formatText, "human":
		f.v = formatText
	case formatJSON:
		f.v = formatJSON
	default:
		return fmt.Errorf("unknown format %q (want text or json)", s)
	}
	return nil
}

// outputFormat returns the --format value of cmd.
func outputFormat(cmd *cobra.Command) string {
	if f := cmd.Flags().Lookup("format"); f != nil {
		return f.Value.String()
	}
	return formatText
}

// statusListValue is a repeatable, comma-separated list of TCB statuses in
// Intel's spelling. The first Set replaces the default.
type statusListValue struct {
	list    []collateral.TCBStatus
	changed bool
}

func (s *statusListValue) String() string {
	names := make([]string, len(s.list))
	for i, st := range s.list {
		names[i] = st.String()
	}
	return strings.Join(names, ",")
}

func (s *statusListValue) Type() string { return "status" }

func (s *statusListValue) Set(v string) error {
	if !s.changed {
		s.list, s.changed = nil, true
	}
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		st, err := collateral.ParseTCBStatus(part)
		if err != nil {
			return fmt.Errorf("unknown TCB status %q (want one of %s)", part, statusNames())
		}
		if !slices.Contains(s.list, st) {
			s.list = append(s.list, st)
		}
	}
	return nil
}

func statusNames() string {
	all := collateral.AllStatuses()
	names := make([]string, len(all))
	for i, st := range all {
		names[i] = st.String()
	}
	return strings.Join(names, ", ")
}

// ageValue is a duration: Go syntax ("36h", "90m") or whole days ("30d").
type ageValue struct{ d time.Duration }

func (a *ageValue) String() string {
	if a.d == 0 {
		return "0"
	}
	return a.d.String()
}

func (a *ageValue) Type() string { return "duration" }

func (a *ageValue) Set(v string) error {
	v = strings.TrimSpace(v)
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 16)
		if err != nil {
			return fmt.Errorf("invalid duration %q (use Go syntax such as 36h or whole days such as 30d)", v)
		}
		a.d = time.Duration(n) * 24 * time.Hour
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return fmt.Errorf("invalid duration %q (use Go syntax such as 36h or whole days such as 30d)", v)
	}
	a.d = d
	return nil
}

// timeValue is a point in time: RFC 3339 or unix seconds. Zero means now.
type timeValue struct{ t time.Time }

func (t *timeValue) String() string {
	if t.t.IsZero() {
		return ""
	}
	return t.t.UTC().Format(time.RFC3339)
}

func (t *timeValue) Type() string { return "time" }

func (t *timeValue) Set(v string) error {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return fmt.Errorf("invalid time %q (unix seconds must be positive)", v)
		}
		t.t = time.Unix(n, 0).UTC()
		return nil
	}
	p, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return fmt.Errorf("invalid time %q (want RFC 3339 such as 2025-07-19T10:00:00Z, or unix seconds)", v)
	}
	t.t = p
	return nil
}
