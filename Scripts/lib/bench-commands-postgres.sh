#!/usr/bin/env bash
# Scripts/bench commands --store postgres: the same deposit workload as the SQLite case, through
# command-service processes whose event store is a throwaway PostgreSQL cluster on the
# repository's disk (fsync and synchronous_commit on, as in production), against the raw rate
# of single-row INSERT transactions from as many clients (pgbench with a custom script, same
# cluster, same run). Cases: one replica (deposits_pg_c<N>) and two replicas on one store, the
# clients split between them (deposits_pg_2replicas_c<N>, N >= 2). Rounds interleaved, medians.
# Environment: ROUNDS [3], RUN_SECONDS [3], CONCURRENCIES ["1 16 64"].
set -euo pipefail
source Scripts/lib/postgres.sh
ROUNDS="${ROUNDS:-3}"
RUN_SECONDS="${RUN_SECONDS:-3}"
CONCURRENCIES="${CONCURRENCIES:-1 16 64}"

step "build ours (release)"
release_build --product command-service >&2
BIN="$(release_build --show-bin-path)"
build_bench_tools commands-bench

bench_workdir bench-commands-pg one two-a two-b
trap 'for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; stop_throwaway_postgres; rm -rf "$WORK"' EXIT
step "a throwaway PostgreSQL cluster on the repository's disk"
chmod 755 "$WORK"
start_throwaway_postgres "$WORK"
"$PG_BIN/psql" -q "$PG_URL" -c "CREATE TABLE raw_insert(id BIGSERIAL PRIMARY KEY, account TEXT NOT NULL, amount BIGINT NOT NULL, data TEXT NOT NULL)"
printf '%s\n' "\\set a random(1, 1000000)" \
  "INSERT INTO raw_insert(account, amount, data) VALUES ('acct-' || :a, 100, '{\"amountMinor\":\"100\",\"currency\":\"EUR\"}');" >"$WORK/raw.sql"

start_listening one "$WORK" "$BIN/command-service" --data-dir "$WORK/one" --no-relay --store "$PG_URL?schema=one&pool=64"
PORT_ONE=$PORT
start_listening two-a "$WORK" "$BIN/command-service" --data-dir "$WORK/two-a" --no-relay --store "$PG_URL?schema=two&pool=32"
PORT_TWO_A=$PORT
start_listening two-b "$WORK" "$BIN/command-service" --data-dir "$WORK/two-b" --no-relay --store "$PG_URL?schema=two&pool=32"
PORT_TWO_B=$PORT

RESULTS="$WORK/results.jsonl"

# pgbench's summary as one JSON line: transactions per second and mean latency.
raw_pgbench() {  # clients
  "$PG_BIN/pgbench" -n -c "$1" -j "$(( $1 < 2 ? 1 : 2 ))" -T "$RUN_SECONDS" -f "$WORK/raw.sql" "$PG_URL" 2>/dev/null |
    python3 -c '
import json, re, sys
text = sys.stdin.read()
tps = float(re.search(r"tps = ([0-9.]+)", text).group(1))
latency = re.search(r"latency average = ([0-9.]+) ms", text)
print(json.dumps({"txn_per_s": tps, "latency_avg_us": float(latency.group(1)) * 1000 if latency else None}))'
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
  if [ "$1" -ge 2 ]; then runs+=("two_c$1|two_replicas $1"); fi
}
interleaved_rounds runs_for

python3 - "$RESULTS" "$CONCURRENCIES" <<'PY'
import sys
sys.path.insert(0, "Scripts/lib")
from bench_summary import Results, line
med = Results(sys.argv[1]).median
raw = "raw-pgbench-insert-txn-synchronous-commit"
for c in sys.argv[2].split():
    line(f"deposits_pg_c{c}", "commands_per_s", med(f"ours_c{c}", "commands_per_s"), [(raw, med(f"raw_c{c}", "txn_per_s"))])
    for metric in ("p50_us", "p99_us"):
        line(f"deposits_pg_c{c}", metric, med(f"ours_c{c}", metric))
    if med(f"two_c{c}", "commands_per_s") is not None:
        line(f"deposits_pg_2replicas_c{c}", "commands_per_s", med(f"two_c{c}", "commands_per_s"), [(raw, med(f"raw_c{c}", "txn_per_s"))])
        for metric in ("p50_us", "p99_us"):
            line(f"deposits_pg_2replicas_c{c}", metric, med(f"two_c{c}", metric))
PY
