#!/bin/sh
# External load test of tdproof serve with wrk (docs/performance.md), on
# loopback only and bounded: a simulated TD (tdsim) gives a quote, its
# root and offline collateral; the SQLite store gets the TD's four
# reference values and 56 others; serve runs with the default policy.
#   scripts/loadtest-wrk.sh TDPROOF [DURATION] [CONNECTIONS] [THREADS] [DCAP_TEST] [LOADTEST_TEST]
# Prints wrk's report and the serve process's CPU per request. With
# DCAP_TEST (go test -c -o dcap.test ./dcap), it then runs dcap's
# BenchmarkP256Verify and BenchmarkP256Sign and prints one P-256
# verification's and one signature's CPU time (cpu-ns/op) and serve's
# ratio to the verification and to the two together (issue 15's unit): CPU time against CPU time, since
# on a shared machine wall time per verification includes waiting for a CPU.
# With LOADTEST_TEST (go test -c -o loadtest.test ./internal/loadtest), it
# also loads the floor server the same way (net/http reading the same
# request, one P-256 verification and one P-256 signature, a response of
# the size serve wrote) and prints its CPU per request and serve's ratio
# to it: the floor of any verification service on net/http.
set -eu
tdproof=$1 duration=${2:-10s} conns=${3:-8} threads=${4:-1} dcaptest=${5:-} floortest=${6:-}
work=$(mktemp -d)
agent_pid= serve_pid= floor_pid=
cleanup() {
	[ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null || true
	[ -n "$floor_pid" ] && kill "$floor_pid" 2>/dev/null || true
	[ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT INT TERM
unset $(env | sed -n 's/^\(TDPROOF_[A-Z_]*\)=.*/\1/p') 2>/dev/null || true

"$tdproof" tdsim init --simulator-state "$work/td" > /dev/null
"$tdproof" tdsim export --simulator-state "$work/td" --out "$work/export" > "$work/refvalues.sh"
# The printed "tdproof refvalue add …" commands, against our database.
sed -n 's/^ *tdproof refvalue add /refvalue add /p' "$work/refvalues.sh" | while read -r line; do
	# shellcheck disable=SC2086
	"$tdproof" $line --db "$work/tdproof.db" > /dev/null
done
i=0
while [ "$i" -lt 56 ]; do
	i=$((i + 1))
	"$tdproof" refvalue add "user.component_$i" "$(printf '%096x' "$i")" --db "$work/tdproof.db" > /dev/null
done
n=$("$tdproof" refvalue list --db "$work/tdproof.db" --format json | grep -c '"name"')

# One quote from the simulated TD through the agent's GetQuote.
printf '%s' '{"manifest_version":2,"name":"loadtest","runner":"docker-compose","docker_compose_file":"services: {}\n","kms_enabled":false}' > "$work/app-compose.json"
"$tdproof" agent --simulate --simulator-state "$work/td" --socket "$work/agent.sock" --log "$work/runtime.log" \
	--app-compose "$work/app-compose.json" > /dev/null 2>&1 &
agent_pid=$!
for _ in $(seq 50); do [ -S "$work/agent.sock" ] && break; sleep 0.1; done
curl -sf --unix-socket "$work/agent.sock" -X POST http://agent/GetQuote \
	-d '{"report_data":"00"}' > "$work/getquote.json"
kill "$agent_pid"; wait "$agent_pid" 2>/dev/null || true; agent_pid=
quote=$(sed -n 's/.*"quote":"\([0-9a-f]*\)".*/\1/p' "$work/getquote.json")
[ -n "$quote" ] || { echo "no quote from the agent" >&2; exit 1; }
printf '{"quote":"%s"}' "$quote" > "$work/body.json"

"$tdproof" serve --db "$work/tdproof.db" --listen 127.0.0.1:0 --role verifier --log-level "${TDPROOF_WRK_LOG_LEVEL:-info}" \
	--trusted-root "$work/export/root.pem" --collateral-dir "$work/export/collateral" --offline > "$work/serve.out" 2>&1 &
serve_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^serve: listening on \(http:[^ ]*\).*/\1/p' "$work/serve.out")
[ -n "$url" ] || { cat "$work/serve.out" >&2; exit 1; }
# Warm up and check: allowed.
curl -sf -X POST -H 'Content-Type: application/json' --data-binary "@$work/body.json" "$url/v1/verify" > "$work/first.json"
grep -q '"allow":true' "$work/first.json" || { echo "first verification not allowed:" >&2; head -c 2000 "$work/first.json" >&2; exit 1; }

cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$work/body.json", "r")
wrk.body = f:read("*a")
f:close()
done = function(summary, latency, requests)
	io.write(string.format("requests %d, errors: status %d connect %d read %d write %d timeout %d\n",
		summary.requests, summary.errors.status, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
	io.write(string.format("latency p50 %.2f ms p99 %.2f ms\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
tick=$(getconf CLK_TCK)
cpu() { awk '{ print $14 + $15 }' "/proc/$serve_pid/stat"; }
c0=$(cpu)
wrk -t "$threads" -c "$conns" -d "$duration" -s "$work/post.lua" "$url/v1/verify" | tee "$work/wrk.out"
c1=$(cpu)
reqs=$(sed -n 's/^requests \([0-9]*\),.*/\1/p' "$work/wrk.out")
awk -v c="$((c1 - c0))" -v t="$tick" -v r="$reqs" -v n="$n" 'BEGIN {
	printf "serve: %d reference values, default policy; CPU %.2f s for %d requests = %.1f us per request\n", n, c / t, r, c / t / r * 1e6 }'
if [ -n "$dcaptest" ]; then
	"$dcaptest" -test.run '^$' -test.bench 'P256(Verify|Sign)$' -test.benchtime 2s > "$work/p256.out"
	floor=$(sed -n 's/^BenchmarkP256Verify.* \([0-9.]*\) cpu-ns\/op.*/\1/p' "$work/p256.out")
	sign=$(sed -n 's/^BenchmarkP256Sign.* \([0-9.]*\) cpu-ns\/op.*/\1/p' "$work/p256.out")
	[ -n "$floor" ] && [ -n "$sign" ] || { echo "no cpu-ns/op from $dcaptest" >&2; cat "$work/p256.out" >&2; exit 1; }
	awk -v c="$((c1 - c0))" -v t="$tick" -v r="$reqs" -v f="$floor" -v g="$sign" 'BEGIN {
		printf "floor: one P-256 verify %.1f us CPU, one P-256 sign %.1f us (BenchmarkP256Verify/Sign, same run); serve CPU per request %.2fx the verify, %.2fx verify + sign\n", f / 1000, g / 1000, c / t / r * 1e9 / f, c / t / r * 1e9 / (f + g) }'
fi
if [ -n "$floortest" ]; then
	size=$(wc -c < "$work/first.json")
	TDPROOF_LOADTEST_SERVE_ARGS="[\"loadtest-floor-server\",\"$size\"]" \
		"$floortest" -test.run '^TestHelperServe$' -test.count 1 > "$work/floor.out" 2>&1 &
	floor_pid=$!
	for _ in $(seq 100); do grep -q "listening on" "$work/floor.out" 2>/dev/null && break; sleep 0.1; done
	furl=$(sed -n 's/^serve: listening on \(http:[^ ]*\).*/\1/p' "$work/floor.out")
	[ -n "$furl" ] || { cat "$work/floor.out" >&2; exit 1; }
	fpid=$floor_pid # TestHelperServe serves in the test process itself
	curl -sf -X POST -H 'Content-Type: application/json' --data-binary "@$work/body.json" "$furl/v1/verify" > /dev/null
	f0=$(awk '{ print $14 + $15 }' "/proc/$fpid/stat")
	wrk -t "$threads" -c "$conns" -d "$duration" -s "$work/post.lua" "$furl/v1/verify" > "$work/wrk-floor.out"
	f1=$(awk '{ print $14 + $15 }' "/proc/$fpid/stat")
	freqs=$(sed -n 's/^requests \([0-9]*\),.*/\1/p' "$work/wrk-floor.out")
	grep -E '^Requests/sec|^latency' "$work/wrk-floor.out" | sed 's/^/floor server: /'
	awk -v c="$((c1 - c0))" -v r="$reqs" -v fc="$((f1 - f0))" -v fr="$freqs" -v t="$tick" -v s="$size" 'BEGIN {
		printf "floor server (net/http, one P-256 verify + one P-256 sign, %d-byte response): CPU %.1f us per request; serve %.2fx it\n",
			s, fc / t / fr * 1e6, (c / r) / (fc / fr) }'
fi
