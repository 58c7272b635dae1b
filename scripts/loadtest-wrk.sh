#!/bin/sh
# External load test of tdproof serve with wrk (docs/performance.md), on
# loopback only and bounded: a simulated TD (tdsim) gives a quote, its
# root and offline collateral; the SQLite store gets the TD's four
# reference values and 56 others; serve runs with the default policy.
#   scripts/loadtest-wrk.sh TDPROOF [DURATION] [CONNECTIONS] [THREADS] [DCAP_TEST] [LOADTEST_TEST] [ROUNDS]
# The load is split into ROUNDS rounds (default 5, or TDPROOF_WRK_ROUNDS)
# of DURATION/ROUNDS each (at least 1 s; DURATION is wrk's: 10s, 2m, …),
# so that the host's speed, which moves by up to a third within minutes on
# a shared machine, moves both sides of each ratio alike. Each round runs:
# wrk on serve, printing serve's CPU per request (from /proc); with
# DCAP_TEST (go test -c -o dcap.test ./dcap), dcap's BenchmarkP256Verify
# and BenchmarkP256Sign (-test.benchtime 0.5s), printing one P-256
# verification's and one signature's CPU time (cpu-ns/op) and serve's ratio
# to the verification and to the two together (issue 15's unit): CPU time
# against CPU time, since on a shared machine wall time per verification
# includes waiting for a CPU; with LOADTEST_TEST (go test -c -o
# loadtest.test ./internal/loadtest), wrk for as long on the floor server
# (net/http reading the same request, one P-256 verification and one P-256
# signature, a response of the size serve wrote), printing its CPU per
# request and serve's ratio to it: the floor of any verification service
# on net/http. A summary follows: the totals over all rounds (serve's CPU
# over its requests, the mean P-256 figures) and the median and range of
# the per-round ratios. Any non-2xx answer or socket error fails the run.
set -eu
tdproof=$1 duration=${2:-10s} conns=${3:-8} threads=${4:-1} dcaptest=${5:-} floortest=${6:-}
rounds=${7:-${TDPROOF_WRK_ROUNDS:-5}} loglevel=${TDPROOF_WRK_LOG_LEVEL:-info}
case $rounds in '' | *[!0-9]* | 0) echo "ROUNDS: want a positive integer, not '$rounds'" >&2; exit 2 ;; esac
# DURATION in seconds, then each round's.
secs=$(printf '%s\n' "$duration" | awk '/^[0-9]+[smh]?$/ { n = $0 + 0; u = substr($0, length($0)); print n * (u == "m" ? 60 : u == "h" ? 3600 : 1); exit } { exit 1 }') ||
	{ echo "DURATION: want N, Ns, Nm or Nh, not '$duration'" >&2; exit 2; }
per=$((secs / rounds))
[ "$per" -ge 1 ] || per=1
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

"$tdproof" serve --db "$work/tdproof.db" --listen 127.0.0.1:0 --role verifier --log-level "$loglevel" \
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
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# wrkround PID URL OUT: wrk for one round against URL (served by process
# PID), its report in OUT; prints "CPU_TICKS REQUESTS REQ/S P50_MS P99_MS".
wrkround() {
	c0=$(cpu "$1")
	wrk -t "$threads" -c "$conns" -d "${per}s" -s "$work/post.lua" "$2/v1/verify" > "$3"
	c1=$(cpu "$1")
	if ! errs=$(sed -n 's/^requests [0-9]*, errors: status \([0-9]*\) connect \([0-9]*\) read \([0-9]*\) write \([0-9]*\) timeout \([0-9]*\)$/\1 \2 \3 \4 \5/p' "$3") ||
		[ -z "$errs" ] || [ "$errs" != "0 0 0 0 0" ] || grep -q '^  Non-2xx' "$3"; then
		echo "wrk against $2: errors (status connect read write timeout: ${errs:-?})" >&2
		cat "$3" >&2
		exit 1
	fi
	awk -v c="$((c1 - c0))" '
		/^requests / { r = $2 + 0 }
		/^Requests\/sec:/ { rps = $2 }
		/^latency p50/ { p50 = $3; p99 = $6 }
		END { print c, r, rps, p50, p99 }' "$3"
}

if [ -n "$floortest" ]; then
	size=$(wc -c < "$work/first.json")
	TDPROOF_LOADTEST_SERVE_ARGS="[\"loadtest-floor-server\",\"$size\"]" \
		"$floortest" -test.run '^TestHelperServe$' -test.count 1 > "$work/floor.out" 2>&1 &
	floor_pid=$! # TestHelperServe serves in the test process itself
	for _ in $(seq 100); do grep -q "listening on" "$work/floor.out" 2>/dev/null && break; sleep 0.1; done
	furl=$(sed -n 's/^serve: listening on \(http:[^ ]*\).*/\1/p' "$work/floor.out")
	[ -n "$furl" ] || { cat "$work/floor.out" >&2; exit 1; }
	curl -sf -X POST -H 'Content-Type: application/json' --data-binary "@$work/body.json" "$furl/v1/verify" > /dev/null
fi

printf 'serve: %d reference values, default policy; %d rounds of %d s of wrk (%d thread(s), %d connections)%s%s\n' \
	"$n" "$rounds" "$per" "$threads" "$conns" "${dcaptest:+, then P-256 verify and sign}" "${floortest:+, then the floor server}"
# One line per round in $work/rounds: serve ticks, requests, req/s, p50, p99;
# verify ns, sign ns (or - -); floor ticks, requests, req/s, p50, p99 (or - - - - -).
: > "$work/rounds"
r=0
while [ "$r" -lt "$rounds" ]; do
	r=$((r + 1))
	line=$(wrkround "$serve_pid" "$url" "$work/wrk.$r.out")
	if [ -n "$dcaptest" ]; then
		"$dcaptest" -test.run '^$' -test.bench 'P256(Verify|Sign)$' -test.benchtime 0.5s > "$work/p256.$r.out"
		verify=$(sed -n 's/^BenchmarkP256Verify.* \([0-9.]*\) cpu-ns\/op.*/\1/p' "$work/p256.$r.out")
		sign=$(sed -n 's/^BenchmarkP256Sign.* \([0-9.]*\) cpu-ns\/op.*/\1/p' "$work/p256.$r.out")
		[ -n "$verify" ] && [ -n "$sign" ] || { echo "no cpu-ns/op from $dcaptest" >&2; cat "$work/p256.$r.out" >&2; exit 1; }
		line="$line $verify $sign"
	else
		line="$line - -"
	fi
	if [ -n "$floortest" ]; then
		line="$line $(wrkround "$floor_pid" "$furl" "$work/wrk-floor.$r.out")"
	else
		line="$line - - - - -"
	fi
	echo "$line" >> "$work/rounds"
	echo "$line" | awk -v r="$r" -v t="$tick" '{
		s = $1 / t / $2 * 1e6
		printf "round %d: serve %.0f req/s, p50 %s ms p99 %s ms, CPU %.1f us per request", r, $3, $4, $5, s
		if ($6 != "-") printf "; P-256 verify %.1f us, sign %.1f us CPU: serve %.2fx the verify, %.2fx verify + sign", $6 / 1000, $7 / 1000, s * 1000 / $6, s * 1000 / ($6 + $7)
		if ($8 != "-") printf "; floor server %.0f req/s, p99 %s ms, CPU %.1f us per request: serve %.2fx it", $10, $12, $8 / t / $9 * 1e6, ($1 / $2) / ($8 / $9)
		printf "\n"
	}'
done

# The summary: totals, and the median and range of the per-round ratios.
awk -v t="$tick" -v n="$n" -v per="$per" -v size="${size:-0}" '
	function sort(a, k,   i, j, x) { for (i = 2; i <= k; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x } }
	function med(a, k) { sort(a, k); return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2 }
	function spread(a, k, f, unit) { sort(a, k); return sprintf("median " f "%s, range " f "-" f "%s", med(a, k), unit, a[1], a[k], unit) }
	{
		k++; sc += $1; sr += $2; s = $1 / t / $2 * 1e6; sp[k] = s
		if (k == 1 || $5 + 0 < lo99) lo99 = $5 + 0; if (k == 1 || $5 + 0 > hi99) hi99 = $5 + 0
		if ($6 != "-") { v += $6; g += $7; rv[k] = s * 1000 / $6; rvs[k] = s * 1000 / ($6 + $7) }
		if ($8 != "-") { fc += $8; fr += $9; f = $8 / t / $9 * 1e6; fp[k] = f; rf[k] = s / f }
	}
	END {
		if (k == 0) exit 1
		s = sc / t / sr * 1e6
		printf "serve: %d reference values, default policy; CPU %.2f s for %d requests = %.1f us per request (%d rounds; %.0f req/s over %d s of wrk; p99 per round %.2f-%.2f ms)\n", n, sc / t, sr, s, k, sr / (k * per), k * per, lo99, hi99
		printf "serve CPU per request per round: %s\n", spread(sp, k, "%.1f", " us")
		if (v > 0) {
			printf "floor: one P-256 verify %.1f us CPU, one P-256 sign %.1f us (BenchmarkP256Verify/Sign, mean of the %d rounds); serve CPU per request %.2fx the verify, %.2fx verify + sign\n", v / k / 1000, g / k / 1000, k, s * 1000 / (v / k), s * 1000 / ((v + g) / k)
			printf "serve / (verify + sign) per round: %s; serve / verify per round: %s\n", spread(rvs, k, "%.2f", "x"), spread(rv, k, "%.2f", "x")
		}
		if (fr > 0) {
			f = fc / t / fr * 1e6
			printf "floor server (net/http, one P-256 verify + one P-256 sign, %d-byte response): CPU %.1f us per request (%d requests); serve %.2fx it\n", size, f, fr, s / f
			printf "serve / floor server per round: %s; floor server CPU per request per round: %s\n", spread(rf, k, "%.2f", "x"), spread(fp, k, "%.1f", " us")
		}
	}' "$work/rounds"
