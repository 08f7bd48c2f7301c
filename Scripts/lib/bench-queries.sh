#!/usr/bin/env bash
# Scripts/bench queries: the QueryService's three figures, each beside a baseline measured in the
# same run, rounds interleaved (ROUNDS, default 3; the order alternates) and medians reported.
#   rebuild     events/s of `Rebuild` over EVENTS stored events (default 1,000,000, written straight
#               into a command-service's store), against raw batched SQLite inserts of as many rows
#               (5,000 per transaction, one prepared statement) on the same disk;
#   get_account GetAccount by id at c=1 and c=64, against the Echo RPC of rpc-testserver (the cost
#               of a call with no work) at the same concurrency;
#   lag         command acknowledged -> visible in a query (GetAccount with its minPosition), at
#               LAG_RATE deposits/s (default 1000) for LAG_SECONDS through all three services; the
#               named target (20 ms at p99) stands in for a baseline.
# stdout: one JSON line per case: {"case","metric","ours","baseline","ratio"}, higher ratio = better.
set -euo pipefail
ROUNDS="${ROUNDS:-3}"
EVENTS="${EVENTS:-1000000}"
RUN_SECONDS="${RUN_SECONDS:-3}"
LAG_RATE="${LAG_RATE:-1000}"
LAG_SECONDS="${LAG_SECONDS:-5}"

step "build ours (release)"
for product in broker command-service query-service rpc-testserver; do swift build -c release --product "$product" >&2; done
BIN="$(swift build -c release --show-bin-path)"
build_bench_tools queries-bench

bench_workdir bench-queries history readmodels raw live
RESULTS="$WORK/results.jsonl"

step "write $EVENTS events into an event store"
"$BENCH_BIN/queries-bench" populate --directory "$WORK/history" --events "$EVENTS" >&2

start_listening history "$WORK" "$BIN/command-service" --data-dir "$WORK/history" --no-relay
HISTORY_PORT=$PORT
start_listening readmodels "$WORK" "$BIN/query-service" --data-dir "$WORK/readmodels" --no-projection --commands "127.0.0.1:$HISTORY_PORT"
QUERIES_PORT=$PORT
start_listening echo "$WORK" "$BIN/rpc-testserver"
ECHO_PORT=$PORT

step "the live system for lag: broker, command-service with relay, query-service with projection"
start_listening broker "$WORK" "$BIN/broker" --data-dir "$WORK/live/broker"
BROKER_PORT=$PORT
start_listening commands "$WORK" "$BIN/command-service" --data-dir "$WORK/live/commands" --broker "127.0.0.1:$BROKER_PORT"
COMMANDS_PORT=$PORT
start_listening queries "$WORK" "$BIN/query-service" --data-dir "$WORK/live/queries" --broker "127.0.0.1:$BROKER_PORT" --commands "127.0.0.1:$COMMANDS_PORT"
LIVE_QUERIES_PORT=$PORT

for round in $(seq "$ROUNDS"); do
  step "round $round of $ROUNDS"
  runs=(
    "rebuild|$BENCH_BIN/queries-bench rebuild --queries 127.0.0.1:$QUERIES_PORT"
    "raw_inserts|$BENCH_BIN/queries-bench raw-inserts --directory $WORK/raw --rows $EVENTS"
  )
  for concurrency in 1 64; do
    runs+=("get_c$concurrency|$BENCH_BIN/queries-bench get --queries 127.0.0.1:$QUERIES_PORT --concurrency $concurrency --seconds $RUN_SECONDS")
    runs+=("echo_c$concurrency|$BENCH_BIN/queries-bench echo --server 127.0.0.1:$ECHO_PORT --concurrency $concurrency --seconds $RUN_SECONDS")
  done
  runs+=("lag|$BENCH_BIN/queries-bench lag --commands 127.0.0.1:$COMMANDS_PORT --queries 127.0.0.1:$LIVE_QUERIES_PORT --rate $LAG_RATE --seconds $LAG_SECONDS")
  if [ $((round % 2)) -eq 0 ]; then
    runs=("${runs[1]}" "${runs[0]}" "${runs[3]}" "${runs[2]}" "${runs[5]}" "${runs[4]}" "${runs[6]}")
  fi
  for entry in "${runs[@]}"; do record "${entry%%|*}" "$(eval "${entry#*|}")"; done
done

python3 - "$RESULTS" "$LAG_RATE" <<'PY'
import sys
sys.path.insert(0, "Scripts/lib")
from bench_summary import Results, line
med = Results(sys.argv[1]).median
line("rebuild", "events_per_s", med("rebuild", "events_per_s"), [("raw-sqlite-batched-inserts", med("raw_inserts", "rows_per_s"))])
for c in (1, 64):
    for metric in ("p50_us", "p99_us"):
        line(f"get_account_c{c}", metric, med(f"get_c{c}", metric), [("echo-rpc", med(f"echo_c{c}", metric))], higher_is_better=False)
    line(f"get_account_c{c}", "calls_per_s", med(f"get_c{c}", "calls_per_s"), [("echo-rpc", med(f"echo_c{c}", "calls_per_s"))])
case = f"lag_{sys.argv[2]}_per_s"
line(case, "p50_ms", med("lag", "p50_ms"))
line(case, "p99_ms", med("lag", "p99_ms"), [("target-p99-20ms", 20.0)], higher_is_better=False)
line(case, "achieved_per_s", med("lag", "achieved_per_s"))
PY
