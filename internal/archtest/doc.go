// Package archtest holds a test that fails when a package imports across
// a forbidden edge of tdproof's architecture (docs/architecture.md):
// parse, derive, verify and appraise packages import none of net/http,
// database/sql or log/slog; parse packages never import verify packages;
// dcap never imports policy; there are no util/common/types packages.
package archtest
