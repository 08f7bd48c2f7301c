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
# `Scripts/bench queries --store postgres`: the PostgreSQL read models' cases instead.
if [ "${2:-}" = "--store" ]; then
  case "${3:-}" in
    postgres) source Scripts/lib/bench-queries-postgres.sh; exit 0 ;;
    sqlite) ;;
    *) echo "usage: Scripts/bench queries [--store sqlite|postgres]" >&2; exit 2 ;;
  esac
fi
ROUNDS="${ROUNDS:-3}"
EVENTS="${EVENTS:-1000000}"
RUN_SECONDS="${RUN_SECONDS:-3}"
LAG_RATE="${LAG_RATE:-1000}"
LAG_SECONDS="${LAG_SECONDS:-5}"

step "build ours (release)"
for product in broker command-service query-service rpc-testserver; do release_build --product "$product" >&2; done
BIN="$(release_build --show-bin-path)"
require_release_server "$BIN/broker" --data-dir {}
require_release_server "$BIN/command-service" --no-relay --data-dir {}
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

python3 -c 'import sys; sys.path.insert(0, "Scripts/lib"); from bench_summary import queries_lines; queries_lines(*sys.argv[1:])' \
  "$RESULTS" "$LAG_RATE" "" raw-sqlite-batched-inserts raw_inserts
