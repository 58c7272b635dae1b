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
//
// TestKBSHandshakeLoad does the same for the key broker (internal/kbs):
// full handshakes (auth, attest with a tdsim quote, resource decrypted and
// compared with the stored secret) from concurrent clients, on SQLite and,
// with TDPROOF_TEST_POSTGRES_DSN, PostgreSQL; it logs handshakes/s,
// p50/p90/p99 of a whole handshake and of each step, and CPU per
// handshake. Defaults: 200 handshakes, 4 clients.
//
//	go test -run TestKBSHandshakeLoad -v ./internal/loadtest -loadtest.kbs.n 5000 -loadtest.kbs.c 16
//
//	go test -run '^$' -bench KBSHandshake ./internal/loadtest -loadtest.kbs.c 16
//
// TestServeLoad measures the product: tdproof serve started as a child
// process through the command line (cli.Main), a real listener, a
// database with 60 reference values and the built-in default policy,
// collateral fetched once from a loopback fake PCS, on SQLite and on
// PostgreSQL (TDPROOF_TEST_POSTGRES_DSN). It logs req/s, p50/p99, the
// child's CPU per request (/proc) and one P-256 verification and one
// P-256 signature measured in the same run. Beside it, under the same load, it runs the floor server:
// a net/http server (in a child process too) that reads the same request,
// hex-decodes its quote, makes one P-256 verification and one P-256
// signature and writes a response of the size tdproof serve wrote; its CPU
// per request is what any verification service on net/http costs here,
// and the test logs tdproof serve's ratio to it. Defaults: 300 requests
// or 5 s, 4 clients.
//
//	go test -run TestServeLoad -v ./internal/loadtest -loadtest.serve.n 50000 -loadtest.serve.d 10s -loadtest.serve.c 8
//
// TestServeDstackLoad runs a tdsim TD's POST /v1/verify and then its
// dstack GetQuote JSON through POST /verify against one tdproof serve
// child and logs each route's server CPU per request; TestServeKBSLoad runs
// key broker handshakes against tdproof serve --role all, so that the
// broker's CPU per handshake is the server process's alone. Both set it
// beside one P-256 verification's CPU time measured in the same run.
// TDPROOF_LOADTEST_CPUPROFILE=FILE makes every serve child write a CPU
// profile to FILE.<test name> (the floor server to FILE.<test name>.floor).
//
//	go test -run 'TestServeDstackLoad|TestServeKBSLoad' -v ./internal/loadtest -loadtest.serve.n 3000 -loadtest.serve.d 15s -loadtest.serve.c 8
//
// -loadtest.serve.rounds N (default 1) splits each of these loads
// (-loadtest.serve.n and -loadtest.serve.d) into N rounds, each round
// being the load (in TestServeLoad, then the floor server's), then the
// P-256 verification and signature measurements, and logs each round's
// ratios and their median and range: on a host whose speed moves by a
// third within minutes, figures taken seconds apart make steadier ratios
// than one load followed by one measurement.
//
// The in-process tests run with tdproof serve's GC target (verifiersvc.GCPercent) unless
// GOGC is set.
package loadtest
