#!/usr/bin/env bash
# Scripts/bench commands: deposits on existing accounts through a running command-service (its
# store on the same disk as the repository, relay off: this measures the write path) at each
# concurrency, against the raw rate of single-row durable SQLite insert transactions (WAL,
# synchronous=FULL) on the same disk, measured in the same run. Rounds are interleaved (ROUNDS,
# default 3; each round starts from a different run) and medians reported. stdout: one JSON line per case:
#   {"case":…,"metric":…,"ours":…,"baseline":[{"name":…,"value":…}],"ratio":{name: …}}
# oriented so that higher is better. A second service runs with --idle-poll-us (IDLE_POLL_US, default
# 1000; 0 skips it) beside the default one, interleaved the same way: its cases are named
# deposits_c<N>_idle_poll. With METRICS_TWIN=1 a third service runs with --metrics-listen (and is
# scraped every second, as Prometheus would, more often than its default 15 s), interleaved the same
# way: cases deposits_c<N>_metrics, their baseline the default service (metrics off) of the same
# rounds, so the ratio is the cost of metrics. With TRACING_TWIN=1 another runs with
# --otlp-endpoint (an OTLP/HTTP sink here takes the spans) and --trace-sample-ratio
# TRACE_SAMPLE_RATIO (default 0.1: sampled, as in production): cases deposits_c<N>_traced, their
# baseline the default service (tracing off). Environment: ROUNDS [3], RUN_SECONDS [3],
# CONCURRENCIES ["1 16 64"], IDLE_POLL_US [1000], METRICS_TWIN [0], TRACING_TWIN [0],
# TRACE_SAMPLE_RATIO [0.1].
set -euo pipefail
# `Scripts/bench commands --store postgres`: the PostgreSQL store's cases instead.
if [ "${2:-}" = "--store" ]; then
  case "${3:-}" in
    postgres) source Scripts/lib/bench-commands-postgres.sh; exit 0 ;;
    sqlite) ;;
    *) echo "usage: Scripts/bench commands [--store sqlite|postgres]" >&2; exit 2 ;;
  esac
fi
ROUNDS="${ROUNDS:-3}"
RUN_SECONDS="${RUN_SECONDS:-3}"
CONCURRENCIES="${CONCURRENCIES:-1 16 64}"
IDLE_POLL_US="${IDLE_POLL_US:-1000}"
METRICS_TWIN="${METRICS_TWIN:-0}"
TRACING_TWIN="${TRACING_TWIN:-0}"
TRACE_SAMPLE_RATIO="${TRACE_SAMPLE_RATIO:-0.1}"

step "build ours (release)"
release_build --product command-service >&2
BIN="$(release_build --show-bin-path)"
require_release_server "$BIN/command-service" --no-relay --data-dir {}
build_bench_tools commands-bench

bench_workdir bench-commands store polling metered traced raw

start_idle_poll_twin polling "$WORK" "$BIN/command-service" --data-dir "$WORK/polling" --no-relay
METRICS_PORT=""
if [ "$METRICS_TWIN" = 1 ]; then
  start_listening metered "$WORK" "$BIN/command-service" --data-dir "$WORK/metered" --no-relay --metrics-listen 127.0.0.1:0
  METRICS_PORT=$PORT
  scrape_address=""
  for _ in $(seq 100); do
    scrape_address="$(python3 -c 'import json,sys
print(next("%s:%d" % (e["host"], e["port"]) for e in map(json.loads, open(sys.argv[1])) if e["event"] == "listening-metrics"))' \
      "$WORK/metered.out" 2>/dev/null)" && break
    sleep 0.1
  done
  ( while sleep 1; do python3 -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5).read()' \
      "http://$scrape_address/metrics" 2>/dev/null || exit 0; done ) &
  pids+=($!)
fi
TRACING_PORT=""
if [ "$TRACING_TWIN" = 1 ]; then
  # The sink answers every export at once and keeps nothing: what is measured is the service's
  # side of tracing (span making, batching, encoding, sending), not a collector's.
  sink_port_file="$WORK/otlp-sink.port"
  python3 - "$sink_port_file" <<'PY' &
import http.server, sys
class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
open(sys.argv[1], "w").write(str(server.server_address[1]))
server.serve_forever()
PY
  pids+=($!)
  for _ in $(seq 100); do [ -s "$sink_port_file" ] && break; sleep 0.1; done
  start_listening traced "$WORK" "$BIN/command-service" --data-dir "$WORK/traced" --no-relay \
    --otlp-endpoint "http://127.0.0.1:$(cat "$sink_port_file")" --trace-sample-ratio "$TRACE_SAMPLE_RATIO"
  TRACING_PORT=$PORT
fi
start_listening service "$WORK" "$BIN/command-service" --data-dir "$WORK/store" --no-relay

RESULTS="$WORK/results.jsonl"

runs_for() {  # concurrency
  runs=(
    "ours_c$1|$BENCH_BIN/commands-bench deposits --server 127.0.0.1:$PORT --concurrency $1 --seconds $RUN_SECONDS"
    "raw_c$1|$BENCH_BIN/commands-bench raw-sqlite --directory $WORK/raw --seconds $RUN_SECONDS"
  )
  if [ -n "$POLL_PORT" ]; then
    runs+=("ours_idle_poll_c$1|$BENCH_BIN/commands-bench deposits --server 127.0.0.1:$POLL_PORT --concurrency $1 --seconds $RUN_SECONDS")
  fi
  if [ -n "$METRICS_PORT" ]; then
    runs+=("ours_metrics_c$1|$BENCH_BIN/commands-bench deposits --server 127.0.0.1:$METRICS_PORT --concurrency $1 --seconds $RUN_SECONDS")
  fi
  if [ -n "$TRACING_PORT" ]; then
    runs+=("ours_traced_c$1|$BENCH_BIN/commands-bench deposits --server 127.0.0.1:$TRACING_PORT --concurrency $1 --seconds $RUN_SECONDS")
  fi
}
interleaved_rounds runs_for

python3 - "$RESULTS" "$CONCURRENCIES" <<'PY'
import sys
sys.path.insert(0, "Scripts/lib")
from bench_summary import Results, line
med = Results(sys.argv[1]).median
for c in sys.argv[2].split():
    line(f"deposits_c{c}", "commands_per_s", med(f"ours_c{c}", "commands_per_s"),
         [("raw-sqlite-insert-txn-synchronous-full", med(f"raw_c{c}", "txn_per_s"))])
    for metric in ("p50_us", "p99_us"):
        line(f"deposits_c{c}", metric, med(f"ours_c{c}", metric))
    if med(f"ours_idle_poll_c{c}", "commands_per_s") is not None:
        line(f"deposits_c{c}_idle_poll", "commands_per_s", med(f"ours_idle_poll_c{c}", "commands_per_s"),
             [("raw-sqlite-insert-txn-synchronous-full", med(f"raw_c{c}", "txn_per_s"))])
        for metric in ("p50_us", "p99_us"):
            line(f"deposits_c{c}_idle_poll", metric, med(f"ours_idle_poll_c{c}", metric))
    if med(f"ours_metrics_c{c}", "commands_per_s") is not None:
        line(f"deposits_c{c}_metrics", "commands_per_s", med(f"ours_metrics_c{c}", "commands_per_s"),
             [("ours-metrics-off", med(f"ours_c{c}", "commands_per_s"))])
        for metric in ("p50_us", "p99_us"):
            line(f"deposits_c{c}_metrics", metric, med(f"ours_metrics_c{c}", metric))
    if med(f"ours_traced_c{c}", "commands_per_s") is not None:
        line(f"deposits_c{c}_traced", "commands_per_s", med(f"ours_traced_c{c}", "commands_per_s"),
             [("ours-tracing-off", med(f"ours_c{c}", "commands_per_s"))])
        for metric in ("p50_us", "p99_us"):
            line(f"deposits_c{c}_traced", metric, med(f"ours_traced_c{c}", metric))
PY
