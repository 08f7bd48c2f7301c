#!/usr/bin/env bash
# Scripts/bench instructions: instructions per call, counted by valgrind's callgrind. Timings on
# this kind of VM move ±20% between runs; instruction counts repeat (same binary, inputs and
# environment), so close A/Bs are decided with these. For each case one process runs under
# callgrind (a release build, debug info stripped: valgrind's reader does not take what Swift
# writes), a warm-up load runs, the counters are zeroed (callgrind_control -z), the measured load
# runs, the counters are dumped (-d), and the whole process's instructions are divided by the calls
# the load completed. stdout: one JSON line per case:
#   {"case":…,"side":"server"|"client"|"command-service"|"query-service","metric":"instructions_per_call","ours":N,"calls":C,"instructions":I}
# Cases:
#   echo, server side: rpc-testserver, unary echo of 200 B, one call in flight (rpc-bench unary);
#   echo, client side: rpc-bench itself under callgrind against a server running natively, two runs
#     of different lengths, (I2 - I1) / (C2 - C1) so that start-up and connection set-up cancel;
#   stream, server and client side: a server stream of 200-byte messages (rpc-bench stream), per message;
#   produce_b1, server side: the broker, one producer, batch-1 durable produce (broker-bench produce);
#   produce_b100, server side: the same with batches of 100 records (per call = per batch);
#   kafka_produce_b100, server side: the same shape through the broker's Kafka port (kafka-bench
#     produce: librdkafka, one idempotent producer, acks=all), to set against produce_b100;
#   kafka_produce_b1, server side: batch-1 produce through the Kafka port from kafka-bench
#     produce-raw (no client library: Produce v9, acks=all, one blocking connection), to set
#     against produce_b1;
#   consume_fetch, server and client side: one partition of CONSUME_RECORDS 200-byte records read
#     from the start by Fetch, 1,000 records a reply, per reply (broker-bench consume; two reads of
#     one pass and five differenced, so filling the topic cancels out);
#   consume_subscribe: the same read by Subscribe, per message of 1,000 records;
#   deposit, server side: the command-service, relay off, one client (commands-bench deposits);
#   deposit_pg, server side: the same with the event store on PostgreSQL (a throwaway cluster on
#     the repository's disk; PostgreSQL's own instructions are not counted, only the service's);
#   rebuild, per event: a query-service (SQLite read models) rebuilding from REBUILD_EVENTS stored
#     events (queries-bench populate, default 20,000) and the command-service serving it the
#     history (ReadAll pages), both under callgrind, counted over a second rebuild after a first.
#   rebuild_pg: the same with the read models on a throwaway PostgreSQL cluster (--read-store).
# Each call pays its fdatasync in the kernel, which callgrind does not count: these are our
# instructions (and the libraries' in user space), not the disk's.
# Counts differ between machines (glibc picks its memcpy by CPU): compare builds on one machine.
# To count another build (a base revision for an A/B), build its servers in release in a worktree
# (with `release_build`'s flags, `--static-swift-stdlib -Xlinker -ljemalloc`, or the counts differ by the
# linking alone) and point SERVER_BIN_DIR at its bin directory; the load clients stay this tree's.
# Environment: MEASURED_SECONDS [8], WARMUP_SECONDS [3], REBUILD_EVENTS [20000], CONSUME_RECORDS [20000],
# CASES ["echo stream produce_b1 produce_b100 kafka_produce_b1 kafka_produce_b100 consume_fetch consume_subscribe deposit deposit_pg rebuild rebuild_pg"],
# SERVER_BIN_DIR [this tree's release build], KEEP_DUMPS [none: a directory the servers' callgrind
# dumps are copied to, as CASE.cg (a consume case's client as CASE_client.cg), for callgrind_annotate].
set -euo pipefail
MEASURED_SECONDS="${MEASURED_SECONDS:-8}"
WARMUP_SECONDS="${WARMUP_SECONDS:-3}"
CASES="${CASES:-echo stream produce_b1 produce_b100 kafka_produce_b1 kafka_produce_b100 consume_fetch consume_subscribe deposit deposit_pg rebuild rebuild_pg}"
CONSUME_RECORDS="${CONSUME_RECORDS:-20000}"
REBUILD_EVENTS="${REBUILD_EVENTS:-20000}"

command -v valgrind >/dev/null || apt_install valgrind
command -v objcopy >/dev/null || apt_install binutils

if [ -n "${SERVER_BIN_DIR:-}" ]; then
  BIN="$SERVER_BIN_DIR"
else
  step "build ours (release)"
  for product in rpc-testserver broker command-service query-service; do release_build --product "$product" >&2; done
  BIN="$(release_build --show-bin-path)"
  require_release_server "$BIN/rpc-testserver"
fi
build_bench_tools rpc-bench broker-bench commands-bench kafka-bench queries-bench

bench_workdir bench-instructions broker store pgstore history readmodels
source Scripts/lib/postgres.sh
trap 'for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; stop_throwaway_postgres; rm -rf "$WORK"' EXIT

# Starts BINARY (stripped) under callgrind as NAME, listening on port 0; sets VG_PID and PORT.
# Usage: start_under_callgrind NAME BINARY ARGS...
start_under_callgrind() {
  local name=$1 binary=$2
  shift 2
  objcopy --strip-debug "$binary" "$WORK/$name.bin"
  valgrind --tool=callgrind --callgrind-out-file="$WORK/$name.cg" "$WORK/$name.bin" "$@" --listen 127.0.0.1:0 --log-level warning \
    >"$WORK/$name.out" 2>"$WORK/$name.err" &
  VG_PID=$!
  pids+=("$VG_PID")
  wait_for_listening "$WORK/$name" 120  # valgrind starts a process tens of times slower
}

# The instructions of a callgrind dump file (its "totals:" line, else "summary:").
instructions_in() {
  python3 - "$1" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
for key in ("totals:", "summary:"):
    found = [l for l in lines if l.startswith(key)]
    if found:
        print(int(found[-1].split()[1]))
        break
PY
}

# A field of the last JSON line of a file. Usage: field FILE NAME
field() { python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])[sys.argv[2]])' "$1" "$2"; }

emit_case() {  # case side calls instructions
  python3 -c 'import json,sys
c, side, calls, total = sys.argv[1], sys.argv[2], int(float(sys.argv[3])), int(sys.argv[4])
print(json.dumps({"case": c, "side": side, "metric": "instructions_per_call", "ours": round(total / calls), "calls": calls, "instructions": total}))' "$@"
}

# Measures the server started last (VG_PID) under LOAD: warm-up, zero, measured run, dump.
# Usage: measure_server CASE CALLS_FIELD LOAD... (LOAD takes --seconds S appended)
measure_server() {
  local name=$1 calls_field=$2
  shift 2
  "$@" --seconds "$WARMUP_SECONDS" >/dev/null
  callgrind_control -z "$VG_PID" >/dev/null
  "$@" --seconds "$MEASURED_SECONDS" >"$WORK/$name.load.json"
  callgrind_control -d "$VG_PID" >/dev/null
  sleep 1
  local dump
  dump="$(ls -t "$WORK/$name.cg".* | head -1)"
  if [ -n "${KEEP_DUMPS:-}" ]; then mkdir -p "$KEEP_DUMPS" && cp "$dump" "$KEEP_DUMPS/$name.cg"; fi
  emit_case "$name" server "$(field "$WORK/$name.load.json" "$calls_field")" "$(instructions_in "$dump")"
  kill "$VG_PID" 2>/dev/null || true
  wait "$VG_PID" 2>/dev/null || true
}

# Measures rpc-bench itself (SUBCOMMAND against a native rpc-testserver) under callgrind: two runs
# of different lengths, (I2 - I1) / (C2 - C1), so that start-up and connecting cancel out.
# Usage: measure_client CASE CALLS_FIELD SUBCOMMAND
measure_client() {
  local name=$1 calls_field=$2 subcommand=$3
  step "$name, client side"
  start_listening "$name-native" "$WORK" "$BIN/rpc-testserver"
  objcopy --strip-debug "$BENCH_BIN/rpc-bench" "$WORK/rpc-bench.bin"
  for seconds in "$WARMUP_SECONDS" "$MEASURED_SECONDS"; do
    valgrind --tool=callgrind --callgrind-out-file="$WORK/$name-client-$seconds.cg" "$WORK/rpc-bench.bin" "$subcommand" --port "$PORT" \
      --warmup-seconds 0 --seconds "$seconds" >"$WORK/$name-client-$seconds.json" 2>/dev/null
  done
  emit_difference "$name" client "$calls_field" "$WORK/$name-client-$WARMUP_SECONDS".{json,cg} "$WORK/$name-client-$MEASURED_SECONDS".{json,cg}
}

# Emits (I2 - I1) / (C2 - C1) for two runs of one load that differ only in how many calls they
# made, so what both runs did once (start-up, connecting, filling a topic) cancels out.
# Usage: emit_difference CASE SIDE CALLS_FIELD JSON1 DUMP1 JSON2 DUMP2 (JSON: the load's output)
emit_difference() {
  python3 - "$@" <<'PY'
import json, sys
name, side, field, json1, dump1, json2, dump2 = sys.argv[1:8]
def run(output, dump):
    calls = json.loads(open(output).read().strip().splitlines()[-1])[field]
    lines = open(dump).read().splitlines()
    total = next(int(l.split()[1]) for key in ("totals:", "summary:") for l in lines if l.startswith(key))
    return calls, total
(c1, i1), (c2, i2) = run(json1, dump1), run(json2, dump2)
print(json.dumps({"case": name, "side": side, "metric": "instructions_per_call", "ours": round((i2 - i1) / (c2 - c1)),
                  "calls": c2 - c1, "instructions": i2 - i1}))
PY
}

# Reading one partition of CONSUME_RECORDS records by VIA (fetch or subscribe), 1,000 records a
# reply, per reply: the broker under callgrind (its counters zeroed and dumped around each of two
# reads, one pass and five; the topic filled in each cancels), then broker-bench itself under
# callgrind against a native broker, the same two runs.
measure_consume() {
  local via=$1 name="consume_$1" passes dump
  local load=(consume --records "$CONSUME_RECORDS" --max-records 1000 --via "$via")
  step "$name: a partition read 1,000 records a reply, server side"
  start_under_callgrind "$name" "$BIN/broker" --data-dir "$WORK/broker-$name"
  for passes in 1 5; do
    callgrind_control -z "$VG_PID" >/dev/null
    "$BENCH_BIN/broker-bench" "${load[@]}" --server "127.0.0.1:$PORT" --passes "$passes" >"$WORK/$name-$passes.json"
    callgrind_control -d "$VG_PID" >/dev/null
    sleep 1
    dump="$(ls -t "$WORK/$name.cg".* | head -1)"
    mv "$dump" "$WORK/$name-$passes.cg"
  done
  if [ -n "${KEEP_DUMPS:-}" ]; then mkdir -p "$KEEP_DUMPS" && cp "$WORK/$name-5.cg" "$KEEP_DUMPS/$name.cg"; fi
  emit_difference "$name" server replies "$WORK/$name-1".{json,cg} "$WORK/$name-5".{json,cg}
  kill "$VG_PID" 2>/dev/null || true
  wait "$VG_PID" 2>/dev/null || true

  step "$name, client side"
  start_listening "$name-native" "$WORK" "$BIN/broker" --data-dir "$WORK/broker-$name-native"
  objcopy --strip-debug "$BENCH_BIN/broker-bench" "$WORK/broker-bench.bin"
  for passes in 1 5; do
    valgrind --tool=callgrind --callgrind-out-file="$WORK/$name-client-$passes.cg" "$WORK/broker-bench.bin" "${load[@]}" \
      --server "127.0.0.1:$PORT" --passes "$passes" >"$WORK/$name-client-$passes.json" 2>/dev/null
  done
  if [ -n "${KEEP_DUMPS:-}" ]; then cp "$WORK/$name-client-5.cg" "$KEEP_DUMPS/${name}_client.cg"; fi
  emit_difference "$name" client replies "$WORK/$name-client-1".{json,cg} "$WORK/$name-client-5".{json,cg}
}

for case in $CASES; do
  case "$case" in
    echo)
      step "echo, server side"
      start_under_callgrind echo "$BIN/rpc-testserver"
      measure_server echo calls "$BENCH_BIN/rpc-bench" unary --port "$PORT" --warmup-seconds 0
      measure_client echo calls unary
      ;;
    stream)
      step "server stream of 200-byte messages, server side"
      start_under_callgrind stream "$BIN/rpc-testserver"
      measure_server stream messages "$BENCH_BIN/rpc-bench" stream --port "$PORT" --warmup-seconds 0
      measure_client stream messages stream
      ;;
    produce_b1)
      step "produce, batch 1, one producer, server side"
      start_under_callgrind produce_b1 "$BIN/broker" --data-dir "$WORK/broker"
      measure_server produce_b1 produces "$BENCH_BIN/broker-bench" produce --server "127.0.0.1:$PORT" --batch 1 --producers 1
      ;;
    produce_b100)
      step "produce, batch 100, one producer, server side"
      start_under_callgrind produce_b100 "$BIN/broker" --data-dir "$WORK/broker"
      measure_server produce_b100 produces "$BENCH_BIN/broker-bench" produce --server "127.0.0.1:$PORT" --batch 100 --producers 1
      ;;
    kafka_produce_b1 | kafka_produce_b100)
      name=$case batch="${case#kafka_produce_b}"
      step "produce through the Kafka port, batch $batch, one producer, server side"
      start_under_callgrind "$name" "$BIN/broker" --data-dir "$WORK/broker" --kafka-listen 127.0.0.1:0
      KAFKA_PORT=$(python3 -c 'import json,sys; print(next(e["port"] for e in map(json.loads, open(sys.argv[1])) if e["event"] == "listening-kafka"))' \
        "$WORK/$name.out")
      # Batch 1 without a client library (the port's own cost per request); batch 100 as the services' librdkafka sends it.
      if [ "$batch" = 1 ]; then client=produce-raw; else client=produce; fi
      measure_server "$name" produces "$BENCH_BIN/kafka-bench" "$client" --bootstrap "127.0.0.1:$KAFKA_PORT" \
        --jframe "127.0.0.1:$PORT" --batch "$batch" --producers 1
      ;;
    deposit)
      step "deposit, one client, relay off, server side"
      start_under_callgrind deposit "$BIN/command-service" --data-dir "$WORK/store" --no-relay
      measure_server deposit commands "$BENCH_BIN/commands-bench" deposits --server "127.0.0.1:$PORT" --concurrency 1
      ;;
    deposit_pg)
      step "deposit, one client, relay off, event store on PostgreSQL, server side"
      chmod 755 "$WORK"
      start_throwaway_postgres "$WORK"
      start_under_callgrind deposit_pg "$BIN/command-service" --data-dir "$WORK/pgstore" --no-relay --store "$PG_URL?schema=bench"
      measure_server deposit_pg commands "$BENCH_BIN/commands-bench" deposits --server "127.0.0.1:$PORT" --concurrency 1
      stop_throwaway_postgres
      ;;
    rebuild | rebuild_pg)
      readmodels=(--data-dir "$WORK/readmodels")
      if [ "$case" = rebuild_pg ]; then
        step "rebuild of $REBUILD_EVENTS stored events into read models on PostgreSQL, per event: both services"
        chmod 755 "$WORK"
        start_throwaway_postgres "$WORK"
        readmodels+=(--read-store "$PG_URL?schema=bench")
      else
        step "rebuild of $REBUILD_EVENTS stored events, per event: the command-service serving the history, the query-service applying it"
      fi
      rm -rf "$WORK/history" "$WORK/readmodels"
      mkdir -p "$WORK/history" "$WORK/readmodels"
      "$BENCH_BIN/queries-bench" populate --directory "$WORK/history" --events "$REBUILD_EVENTS" >&2
      start_under_callgrind "${case}_history" "$BIN/command-service" --data-dir "$WORK/history" --no-relay
      history_vg=$VG_PID
      start_under_callgrind "${case}_readmodels" "$BIN/query-service" "${readmodels[@]}" --no-projection --commands "127.0.0.1:$PORT"
      "$BENCH_BIN/queries-bench" rebuild --queries "127.0.0.1:$PORT" >/dev/null  # the first builds the tables and warms up
      callgrind_control -z "$history_vg" >/dev/null
      callgrind_control -z "$VG_PID" >/dev/null
      "$BENCH_BIN/queries-bench" rebuild --queries "127.0.0.1:$PORT" >"$WORK/$case.load.json"
      callgrind_control -d "$history_vg" >/dev/null
      callgrind_control -d "$VG_PID" >/dev/null
      sleep 1
      for side in history readmodels; do
        dump="$(ls -t "$WORK/${case}_$side.cg".* | head -1)"
        if [ -n "${KEEP_DUMPS:-}" ]; then mkdir -p "$KEEP_DUMPS" && cp "$dump" "$KEEP_DUMPS/${case}_$side.cg"; fi
        emit_case "$case" "$([ $side = history ] && echo command-service || echo query-service)" \
          "$(field "$WORK/$case.load.json" events)" "$(instructions_in "$dump")"
      done
      kill "$history_vg" "$VG_PID" 2>/dev/null || true
      wait "$history_vg" "$VG_PID" 2>/dev/null || true
      if [ "$case" = rebuild_pg ]; then stop_throwaway_postgres; fi
      ;;
    consume_fetch) measure_consume fetch ;;
    consume_subscribe) measure_consume subscribe ;;
    *) echo "unknown case $case (echo, stream, produce_b1, produce_b100, kafka_produce_b100, consume_fetch, consume_subscribe, deposit, deposit_pg, rebuild, rebuild_pg)" >&2; exit 2 ;;
  esac
done
