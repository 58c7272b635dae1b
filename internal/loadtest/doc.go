// Package loadtest holds a bounded loopback load test of the verification
// service (internal/verifiersvc): its tests start the service in-process on
// 127.0.0.1:0 behind a real listener, send POST /v1/verify requests with a
// repeat-platform quote from concurrent keep-alive clients until a request
// count or a duration is reached, and log verifications/s and p50/p99
// latency. Only correctness is asserted, never timing. The package has no
// non-test code.
//
//	go test -run TestLoad -v ./internal/loadtest -loadtest.n 20000 -loadtest.d 8s -loadtest.c 16
//
//	go test -run '^$' -bench VerifyHTTP ./internal/loadtest
//
// The defaults (300 requests, 3 s, 4 clients) only check correctness, so
// that make test does not saturate the machine under other tests.
package loadtest
