// Package webui is tdproof serve's evidence page: GET / serves a single
// page (assets embedded in the binary, no CDN, no external font, no inline
// script, a strict Content-Security-Policy) where a user drops or pastes
// evidence; the page sends it to POST /v1/verify and shows the evidence
// report (package report) the server renders from that response with
// POST /ui/report. The page verifies nothing itself.
package webui

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/tdproof/tdproof/internal/report"
)

// CSP is the Content-Security-Policy of every UI response: only the
// serving origin, no inline script or style, no framing.
const CSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"

// MaxReportBody bounds a POST /ui/report body (a /v1/verify response).
const MaxReportBody = 8 << 20

//go:embed assets/index.html assets/app.js
var assets embed.FS

// Handler serves the page and its assets and passes every other request
// to api (the verification service): GET / (exactly), GET
// /ui/app.js, GET /ui/report.css and POST /ui/report.
func Handler(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	index := mustAsset("assets/index.html")
	js := mustAsset("assets/app.js")
	css := report.Stylesheet()
	mux.HandleFunc("GET /{$}", static(index, "text/html; charset=utf-8"))
	mux.HandleFunc("GET /ui/app.js", static(js, "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /ui/report.css", static(css, "text/css; charset=utf-8"))
	mux.HandleFunc("POST /ui/report", handleReport)
	mux.Handle("/", api)
	return mux
}

func mustAsset(name string) []byte {
	b, err := assets.ReadFile(name)
	if err != nil {
		panic(err) // the embed directive names it
	}
	return b
}

func secure(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

func static(body []byte, ctype string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		secure(w.Header())
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	}
}

// handleReport renders the report fragment of a /v1/verify response.
func handleReport(w http.ResponseWriter, r *http.Request) {
	secure(w.Header())
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxReportBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			problem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body exceeds %d bytes", MaxReportBody))
			return
		}
		problem(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	in, err := report.Parse(body)
	if err != nil {
		problem(w, http.StatusBadRequest, "not a /v1/verify response: "+err.Error())
		return
	}
	v, err := report.New(in)
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	var buf bytes.Buffer
	if err := report.Fragment(&buf, v); err != nil {
		problem(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail})
}
