package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
)

//go:embed report.css
var stylesheet []byte

//go:embed report.html.tmpl
var templateText string

var tmpl = template.Must(template.New("report").Parse(templateText))

// Stylesheet returns the report's CSS.
func Stylesheet() []byte { return bytes.Clone(stylesheet) }

// Page writes v as one self-contained HTML document: inline CSS, no
// script, no external resource (the advisory links point at Intel's
// public pages).
func Page(w io.Writer, v *View) error {
	var buf bytes.Buffer
	// The CSS is the package's own embedded file, not input.
	if err := tmpl.ExecuteTemplate(&buf, "page", struct {
		View *View
		CSS  template.CSS
	}{v, template.CSS(stylesheet)}); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// Fragment writes v as an HTML fragment (an <article>), for a page that
// links Stylesheet.
func Fragment(w io.Writer, v *View) error {
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, "report", v); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}
