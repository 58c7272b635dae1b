// Command testsummary runs go test -json with its arguments, prints what
// go test prints without -v (package results, and the output of failed
// tests), then a summary of every skipped test with the reason it gave,
// so that `make test` says what it did not test. It exits with go test's
// exit code.
//
//	go run ./internal/cmd/testsummary -race -count=1 ./...
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
)

// event is one line of go test -json (cmd/test2json).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string
}

type key struct{ pkg, test string }

// summary accumulates what the run printed and skipped.
type summary struct {
	out     io.Writer
	output  map[key][]string
	skipped []skip
	failed  int
}

type skip struct {
	pkg, test, reason string
}

func newSummary(out io.Writer) *summary {
	return &summary{out: out, output: map[key][]string{}}
}

// handle processes one event.
func (s *summary) handle(e event) {
	k := key{e.Package, e.Test}
	switch e.Action {
	case "build-output":
		fmt.Fprint(s.out, e.Output)
	case "output":
		if e.Test == "" {
			// Package-level lines: "ok …", "FAIL …", "--- FAIL" of
			// failed tests are printed with their test below.
			if e.Output != "PASS\n" && !strings.HasPrefix(e.Output, "=== ") && !strings.HasPrefix(strings.TrimSpace(e.Output), "--- ") {
				fmt.Fprint(s.out, e.Output)
			}
			return
		}
		s.output[k] = append(s.output[k], e.Output)
	case "skip":
		if e.Test != "" {
			s.skipped = append(s.skipped, skip{pkg: e.Package, test: e.Test, reason: skipReason(s.output[k])})
		}
		delete(s.output, k)
	case "fail":
		if e.Test != "" {
			s.failed++
			for _, line := range s.output[k] {
				if !strings.HasPrefix(line, "=== ") {
					fmt.Fprint(s.out, line)
				}
			}
		}
		delete(s.output, k)
	case "pass":
		delete(s.output, k)
	}
}

// skipReason is the message a skipped test logged: its output lines
// other than the === and --- markers, trimmed.
func skipReason(lines []string) string {
	var msg []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- ") {
			continue
		}
		// "file_test.go:12: message": keep the message.
		if i := strings.Index(t, ": "); i > 0 && strings.Contains(t[:i], ".go:") {
			t = t[i+2:]
		}
		msg = append(msg, t)
	}
	if len(msg) == 0 {
		return "(no reason given)"
	}
	return strings.Join(msg, " / ")
}

// report prints the skipped tests, grouped by reason.
func (s *summary) report() {
	if len(s.skipped) == 0 {
		fmt.Fprintln(s.out, "\nskipped: none")
		return
	}
	byReason := map[string][]string{}
	for _, sk := range s.skipped {
		name := strings.TrimPrefix(sk.pkg, "github.com/tdproof/tdproof/") + " " + sk.test
		byReason[sk.reason] = append(byReason[sk.reason], name)
	}
	reasons := make([]string, 0, len(byReason))
	for r := range byReason {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool {
		if len(byReason[reasons[i]]) != len(byReason[reasons[j]]) {
			return len(byReason[reasons[i]]) > len(byReason[reasons[j]])
		}
		return reasons[i] < reasons[j]
	})
	fmt.Fprintf(s.out, "\nskipped: %d tests (set the environment they name to run them; make test-full sets up PostgreSQL and the Debian artifacts)\n", len(s.skipped))
	for _, r := range reasons {
		names := byReason[r]
		sort.Strings(names)
		fmt.Fprintf(s.out, "  %d × %s\n", len(names), r)
		const show = 4
		for i, n := range names {
			if i == show {
				fmt.Fprintf(s.out, "      … and %d more\n", len(names)-show)
				break
			}
			fmt.Fprintf(s.out, "      %s\n", n)
		}
	}
}

// consume reads go test -json output from r.
func (s *summary) consume(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			// Not JSON (go test's own messages): pass it on.
			fmt.Fprintln(s.out, sc.Text())
			continue
		}
		s.handle(e)
	}
	return sc.Err()
}

func main() {
	cmd := exec.Command("go", append([]string{"test", "-json"}, os.Args[1:]...)...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	}
	s := newSummary(os.Stdout)
	if err := s.consume(stdout); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
	}
	err = cmd.Wait()
	s.report()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		os.Exit(ee.ExitCode())
	case err != nil:
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	}
}
