#!/usr/bin/env bash
# Scripts/bench commands --store postgres: the same deposit workload as the SQLite case, through
# command-service processes whose event store is a throwaway PostgreSQL cluster on the
# repository's disk (fsync and synchronous_commit on, as in production), against the raw rate
# of single-row INSERT transactions from as many clients (pgbench with a custom script, same
# cluster, same run). Cases: one replica (deposits_pg_c<N>) and two replicas on one store, the
# clients split between them (deposits_pg_2replicas_c<N>, N >= 2). Rounds interleaved, medians.
# With one client a third run says what the database alone takes: the store's own write for one
# deposit (its `append_rows_at` call, prepared, one transaction each, as the store commits a lone
# command) from one pgbench client (store_statement_pg_c1), so deposits_pg_c1 reads against both
# the raw INSERT and the floor our statement sets. As in the SQLite case, a second one-replica
# service runs with --idle-poll-us (IDLE_POLL_US, default 1000; 0 skips it) on a schema of its
# own, interleaved the same way: cases deposits_pg_c<N>_idle_poll. (It is where spinners that did
# not give way to PostgreSQL's backend showed: a third of the default's rate at one client.)
# Environment: ROUNDS [3], RUN_SECONDS [3], CONCURRENCIES ["1 16 64"], IDLE_POLL_US [1000].
set -euo pipefail
source Scripts/lib/postgres.sh
ROUNDS="${ROUNDS:-3}"
RUN_SECONDS="${RUN_SECONDS:-3}"
CONCURRENCIES="${CONCURRENCIES:-1 16 64}"
IDLE_POLL_US="${IDLE_POLL_US:-1000}"

step "build ours (release)"
release_build --product command-service >&2
BIN="$(release_build --show-bin-path)"
require_release_server "$BIN/command-service" --no-relay --data-dir {}
build_bench_tools commands-bench

bench_workdir bench-commands-pg one polling two-a two-b floor
trap 'for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; stop_throwaway_postgres; rm -rf "$WORK"' EXIT
step "a throwaway PostgreSQL cluster on the repository's disk"
chmod 755 "$WORK"
start_throwaway_postgres "$WORK"
"$PG_BIN/psql" -q "$PG_URL" -c "CREATE TABLE raw_insert(id BIGSERIAL PRIMARY KEY, account TEXT NOT NULL, amount BIGINT NOT NULL, data TEXT NOT NULL)"
printf '%s\n' "\\set a random(1, 1000000)" \
  "INSERT INTO raw_insert(account, amount, data) VALUES ('acct-' || :a, 100, '{\"amountMinor\":\"100\",\"currency\":\"EUR\"}');" >"$WORK/raw.sql"

start_listening one "$WORK" "$BIN/command-service" --data-dir "$WORK/one" --no-relay --store "$PG_URL?schema=one&pool=64"
PORT_ONE=$PORT
start_idle_poll_twin polling "$WORK" "$BIN/command-service" --data-dir "$WORK/polling" --no-relay --store "$PG_URL?schema=polling&pool=64"
start_listening two-a "$WORK" "$BIN/command-service" --data-dir "$WORK/two-a" --no-relay --store "$PG_URL?schema=two&pool=32"
PORT_TWO_A=$PORT
start_listening two-b "$WORK" "$BIN/command-service" --data-dir "$WORK/two-b" --no-relay --store "$PG_URL?schema=two&pool=32"
PORT_TWO_B=$PORT

# The floor's schema, made by a command-service that then stops: pgbench writes there alone.
start_listening floor "$WORK" "$BIN/command-service" --data-dir "$WORK/floor" --no-relay --store "$PG_URL?schema=floor&pool=1"
kill "${pids[-1]}"
# One deposit's write as the store sends it (sizes of a commands-bench deposit: UUID ids, the
# event's JSON, a SHA-256 digest); positions and versions count up from the head, in a variable
# pgbench keeps for its client between transactions.
id="'01a24e7e-1a7c-751d-aef0-' || lpad(:i::text, 12, '0')"
printf '%s\n' "\\set i :i + 1" "\\set b :i - 1" \
  "SELECT floor.append_rows_at(:b, :i, NULL, ARRAY[:i]::bigint[], ARRAY[$id], ARRAY['BankAccount-bench-c73628e6-0'], ARRAY[:i]::bigint[],
    ARRAY['FundsDeposited'], ARRAY[1]::bigint[], ARRAY[1796590860123]::bigint[], ARRAY['01a24e7e-1a7c-7964-a254-5a102b6f0c54'],
    ARRAY[true], ARRAY['01a24e7e-1a7c-7650-a637-3221dfbef408'], ARRAY[true],
    ARRAY[convert_to('{\"accountId\":\"bench-c73628e6-0\",\"amount\":{\"amountMinor\":1,\"currency\":\"EUR\"}}', 'UTF8')],
    ARRAY[1234567]::bigint[], ARRAY[''], ARRAY[false], ARRAY['c' || $id], ARRAY['BankAccount-bench-c73628e6-0'], ARRAY[:i]::bigint[],
    ARRAY[:i]::bigint[], ARRAY['3e830fcf001f7b575b878f8264453bd782e7a807ae03276638e3b35085e7ed87']);" >"$WORK/floor.sql"

RESULTS="$WORK/results.jsonl"

raw_pgbench() {  # clients
  "$PG_BIN/pgbench" -n -c "$1" -j "$(( $1 < 2 ? 1 : 2 ))" -T "$RUN_SECONDS" -f "$WORK/raw.sql" "$PG_URL" 2>/dev/null | pgbench_summary
}

# A call that found the head elsewhere writes nothing (and answers that head): the head must have
# moved by every transaction pgbench counted, or the figure is refused.
statement_floor() {
  local head summary moved
  head=$("$PG_BIN/psql" -qtA "$PG_URL" -c "SELECT position FROM floor.head")
  summary=$("$PG_BIN/pgbench" -n -c 1 -j 1 -T "$RUN_SECONDS" -M prepared -D "i=$head" -f "$WORK/floor.sql" "$PG_URL" 2>/dev/null | pgbench_summary)
  moved=$(( $("$PG_BIN/psql" -qtA "$PG_URL" -c "SELECT position FROM floor.head") - head ))
  python3 -c 'import json, sys; s = json.loads(sys.argv[1]); assert s["transactions"] == int(sys.argv[2]), "the floor wrote %s of %d calls" % (sys.argv[2], s["transactions"])' \
    "$summary" "$moved" >&2 || exit 1
  echo "$summary"
}

# pgbench's summary as one JSON line: transactions per second and mean latency.
pgbench_summary() {
  python3 -c '
import json, re, sys
text = sys.stdin.read()
tps = float(re.search(r"tps = ([0-9.]+)", text).group(1))
latency = re.search(r"latency average = ([0-9.]+) ms", text)
transactions = int(re.search(r"number of transactions actually processed: ([0-9]+)", text).group(1))
print(json.dumps({"txn_per_s": tps, "latency_avg_us": float(latency.group(1)) * 1000 if latency else None,
                  "transactions": transactions}))'
}

# Two commands-bench clients at once, one per replica, half the concurrency each: one JSON line
# with their summed rate and the slower one's percentiles.
two_replicas() {  # concurrency
  local half=$(( $1 / 2 ))
  "$BENCH_BIN/commands-bench" deposits --server "127.0.0.1:$PORT_TWO_A" --concurrency "$half" --seconds "$RUN_SECONDS" >"$WORK/a.json" &
  local a=$!
  "$BENCH_BIN/commands-bench" deposits --server "127.0.0.1:$PORT_TWO_B" --concurrency "$half" --seconds "$RUN_SECONDS" >"$WORK/b.json"
  wait "$a"
  python3 - "$WORK/a.json" "$WORK/b.json" <<'PY'
import json, sys
a, b = (json.loads(open(p).read().strip().splitlines()[-1]) for p in sys.argv[1:])
print(json.dumps({"commands_per_s": a["commands_per_s"] + b["commands_per_s"],
                  "p50_us": max(a["p50_us"], b["p50_us"]), "p99_us": max(a["p99_us"], b["p99_us"])}))
PY
}

runs_for() {  # concurrency
  runs=(
    "ours_c$1|$BENCH_BIN/commands-bench deposits --server 127.0.0.1:$PORT_ONE --concurrency $1 --seconds $RUN_SECONDS"
    "raw_c$1|raw_pgbench $1"
  )
  if [ -n "$POLL_PORT" ]; then
    runs+=("ours_idle_poll_c$1|$BENCH_BIN/commands-bench deposits --server 127.0.0.1:$POLL_PORT --concurrency $1 --seconds $RUN_SECONDS")
  fi
  if [ "$1" -ge 2 ]; then runs+=("two_c$1|two_replicas $1"); fi
  if [ "$1" -eq 1 ]; then runs+=("floor_c1|statement_floor"); fi
}
interleaved_rounds runs_for

python3 - "$RESULTS" "$CONCURRENCIES" <<'PY'
import sys
sys.path.insert(0, "Scripts/lib")
from bench_summary import Results, line
med = Results(sys.argv[1]).median
raw = "raw-pgbench-insert-txn-synchronous-commit"
floor = "store-append-statement-pgbench"
for c in sys.argv[2].split():
    floors = [(floor, med("floor_c1", "txn_per_s"))] if c == "1" else []
    line(f"deposits_pg_c{c}", "commands_per_s", med(f"ours_c{c}", "commands_per_s"), [(raw, med(f"raw_c{c}", "txn_per_s"))] + floors)
    if floors:
        line("store_statement_pg_c1", "txn_per_s", floors[0][1], [(raw, med("raw_c1", "txn_per_s"))])
    for metric in ("p50_us", "p99_us"):
        line(f"deposits_pg_c{c}", metric, med(f"ours_c{c}", metric))
    if med(f"ours_idle_poll_c{c}", "commands_per_s") is not None:
        line(f"deposits_pg_c{c}_idle_poll", "commands_per_s", med(f"ours_idle_poll_c{c}", "commands_per_s"),
             [(raw, med(f"raw_c{c}", "txn_per_s"))] + floors)
        for metric in ("p50_us", "p99_us"):
            line(f"deposits_pg_c{c}_idle_poll", metric, med(f"ours_idle_poll_c{c}", metric))
    if med(f"two_c{c}", "commands_per_s") is not None:
        line(f"deposits_pg_2replicas_c{c}", "commands_per_s", med(f"two_c{c}", "commands_per_s"), [(raw, med(f"raw_c{c}", "txn_per_s"))])
        for metric in ("p50_us", "p99_us"):
            line(f"deposits_pg_2replicas_c{c}", metric, med(f"two_c{c}", metric))
PY
