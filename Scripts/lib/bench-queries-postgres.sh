#!/usr/bin/env bash
# Scripts/bench queries --store postgres: the QueryService with its read models in a throwaway
# PostgreSQL cluster on the repository's disk (--read-store), each figure beside a baseline
# measured in the same run, rounds interleaved (ROUNDS, default 3; rotated) and medians reported.
#   rebuild_pg      events/s of `Rebuild` over EVENTS stored events (default 200,000) into the
#                   shadow schema and the swap, against a raw batched load of as many rows shaped
#                   like the transactions model (`COPY … FROM STDIN` through psql, one
#                   transaction, synchronous_commit off as the shadow schema's) into the same
#                   cluster;
#   get_account_pg  GetAccount by id at c=1 and c=64 (each read a PostgreSQL round trip from a
#                   Dispatch thread), against the Echo RPC of rpc-testserver at the same concurrency;
#   lag_pg          command acknowledged -> visible in a query (GetAccount with its minPosition),
#                   at LAG_RATE deposits/s (default 500: on a 2-vCPU VM the PostgreSQL projection
#                   saturates near 800/s with every process on it, and the open-loop client then
#                   piles up waiting reads) through broker, command-service and a query-service
#                   on PostgreSQL; the named target (20 ms at p99) stands in for a baseline.
# stdout: one JSON line per case: {"case","metric","ours","baseline","ratio"}, higher ratio = better.
set -euo pipefail
source Scripts/lib/postgres.sh
ROUNDS="${ROUNDS:-3}"
EVENTS="${EVENTS:-200000}"
RUN_SECONDS="${RUN_SECONDS:-3}"
LAG_RATE="${LAG_RATE:-500}"
LAG_SECONDS="${LAG_SECONDS:-5}"

step "build ours (release)"
for product in broker command-service query-service rpc-testserver; do release_build --product "$product" >&2; done
BIN="$(release_build --show-bin-path)"
require_release_server "$BIN/broker" --data-dir {}
require_release_server "$BIN/command-service" --no-relay --data-dir {}
build_bench_tools queries-bench

bench_workdir bench-queries-pg history readmodels live
trap 'for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; stop_throwaway_postgres; rm -rf "$WORK"' EXIT
step "a throwaway PostgreSQL cluster on the repository's disk"
chmod 755 "$WORK"
start_throwaway_postgres "$WORK"
RESULTS="$WORK/results.jsonl"

step "write $EVENTS events into an event store"
"$BENCH_BIN/queries-bench" populate --directory "$WORK/history" --events "$EVENTS" >&2

step "the raw baseline's rows: $EVENTS transaction rows as CSV"
python3 - "$EVENTS" "$WORK/raw.csv" <<'PY'
import sys
rows, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as out:
    for row in range(rows):
        out.write(f"bench-{row % 10000},{row // 10000 + 1},DEPOSIT,1,EUR,{row},1795435200000,{row + 1}\n")
PY
chmod 644 "$WORK/raw.csv"

# One COPY of every row into a fresh table shaped like account_transactions (its text in byte
# order, as the read models' is: PostgresReadModelSchema.byteOrderText); one JSON line.
raw_copy() {
  "$PG_BIN/psql" -q "$PG_URL" -c "DROP TABLE IF EXISTS raw_t; CREATE TABLE raw_t(account_id TEXT COLLATE \"C\" NOT NULL,
    version BIGINT NOT NULL, kind TEXT COLLATE \"C\" NOT NULL, amount_minor BIGINT NOT NULL, currency TEXT COLLATE \"C\" NOT NULL,
    balance_after BIGINT NOT NULL, at BIGINT NOT NULL,
    position BIGINT NOT NULL, PRIMARY KEY(account_id, version))" >&2
  python3 - "$PG_BIN/psql" "$PG_URL" "$WORK/raw.csv" "$EVENTS" <<'PY'
import json, subprocess, sys, time
psql, url, path, rows = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
started = time.monotonic()
subprocess.run([psql, "-q", url, "-c", "SET synchronous_commit = off", "-c", f"\\copy raw_t FROM '{path}' WITH (FORMAT csv)"], check=True)
print(json.dumps({"case": "raw_copy", "rows": rows, "rows_per_s": round(rows / (time.monotonic() - started))}))
PY
}

start_listening history "$WORK" "$BIN/command-service" --data-dir "$WORK/history" --no-relay
HISTORY_PORT=$PORT
start_listening readmodels "$WORK" "$BIN/query-service" --data-dir "$WORK/readmodels" --no-projection --commands "127.0.0.1:$HISTORY_PORT" \
  --read-store "$PG_URL?schema=rebuilt"
QUERIES_PORT=$PORT
start_listening echo "$WORK" "$BIN/rpc-testserver"
ECHO_PORT=$PORT

step "the live system for lag: broker, command-service, query-service on PostgreSQL"
start_listening broker "$WORK" "$BIN/broker" --data-dir "$WORK/live/broker"
BROKER_PORT=$PORT
start_listening commands "$WORK" "$BIN/command-service" --data-dir "$WORK/live/commands" --broker "127.0.0.1:$BROKER_PORT"
COMMANDS_PORT=$PORT
start_listening queries "$WORK" "$BIN/query-service" --data-dir "$WORK/live/queries" --broker "127.0.0.1:$BROKER_PORT" \
  --commands "127.0.0.1:$COMMANDS_PORT" --read-store "$PG_URL?schema=live"
LIVE_QUERIES_PORT=$PORT

runs_for() {  # (one pass: the concurrency levels are inside)
  runs=(
    "rebuild|$BENCH_BIN/queries-bench rebuild --queries 127.0.0.1:$QUERIES_PORT"
    "raw_copy|raw_copy"
  )
  for concurrency in 1 64; do
    runs+=("get_c$concurrency|$BENCH_BIN/queries-bench get --queries 127.0.0.1:$QUERIES_PORT --concurrency $concurrency --seconds $RUN_SECONDS")
    runs+=("echo_c$concurrency|$BENCH_BIN/queries-bench echo --server 127.0.0.1:$ECHO_PORT --concurrency $concurrency --seconds $RUN_SECONDS")
  done
  runs+=("lag|$BENCH_BIN/queries-bench lag --commands 127.0.0.1:$COMMANDS_PORT --queries 127.0.0.1:$LIVE_QUERIES_PORT --rate $LAG_RATE --seconds $LAG_SECONDS")
}
CONCURRENCIES=all interleaved_rounds runs_for

python3 -c 'import sys; sys.path.insert(0, "Scripts/lib"); from bench_summary import queries_lines; queries_lines(*sys.argv[1:])' \
  "$RESULTS" "$LAG_RATE" "_pg" raw-postgres-copy raw_copy
