#!/usr/bin/env bash
# Scripts/bench broker: our broker against (a) raw write+fdatasync appends of the same sizes by a
# tiny writer on the same disk (the physical limit) and (b) Redis Streams XADD with appendonly yes,
# appendfsync always (redis-server from Debian, started and stopped here). Rounds are interleaved
# (ROUNDS, default 3) and medians reported. stdout: one JSON line per case:
#   {"case":…,"metric":…,"ours":…,"baseline":[{"name":…,"value":…},…],"ratio":{name: ours/baseline,…}}
# Consume is measured two ways: a loop of Fetch calls, each waiting for the last (a polling
# consumer: client and broker take turns), and the server-streaming Subscribe (the broker encodes
# the next batch while the client decodes this one).
# oriented so that higher is better (ours/baseline for rates, baseline/ours for latencies).
# A second broker runs with --idle-poll-us (IDLE_POLL_US, default 1000; 0 skips it) and its produce
# runs are interleaved with the others: cases produce_batch<B>_producers<P>_idle_poll.
# The broker's Kafka port is measured in the same rounds with confluent-kafka (Scripts/lib/kafka_bench.py,
# KAFKA=0 skips it): kafka_produce_batch<B>_producers<P> against the jframe case of the same shape and
# Redis, and kafka_consume_one_partition against jframe Fetch and the 500k target. The same cases
# run with librdkafka from Swift too (Benchmarks/kafka-bench, KafkaClient as the services use it:
# idempotent, acks=all): kafka_produce_…_librdkafka and kafka_consume_one_partition_librdkafka,
# where the client is not the limit (Python's per-message callbacks are, at large batches).
# And once more without a client library (kafka-bench produce-raw: a thread per producer, one
# blocking connection, Produce v9 encoded with our KafkaWire codecs): kafka_produce_…_raw, the
# port's own figure where librdkafka, not the broker, is the limit (16 producers, big batches).
# Batched cases' p50 and p99 have a second Redis baseline, redis-xadd-batch-round-trip
# (Scripts/lib/redis_batch_bench.py): each batch timed from its send to its last reply, as
# broker-bench times ours; redis-benchmark's latency with -P is to a pipeline's first reply.
# Environment: ROUNDS [3], RUN_SECONDS [3], CASES ["1:1 1:16 100:1 100:16 1000:1 1000:16"] (batch:producers).
set -euo pipefail
ROUNDS="${ROUNDS:-3}"
RUN_SECONDS="${RUN_SECONDS:-3}"
CASES="${CASES:-1:1 1:16 100:1 100:16 1000:1 1000:16}"
IDLE_POLL_US="${IDLE_POLL_US:-1000}"
KAFKA="${KAFKA:-1}"

command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || apt_install redis-server redis-tools

step "build ours (release)"
release_build --product broker >&2
[ "$KAFKA" = 1 ] && { release_build --product cqrs >&2; ensure_python_venv; }
BIN="$(release_build --show-bin-path)"
require_release_server "$BIN/broker" --data-dir {}
if [ "$KAFKA" = 1 ]; then build_bench_tools broker-bench kafka-bench; else build_bench_tools broker-bench; fi

# On the same disk as the repository (not a tmpfs /tmp): durability costs what it costs there.
bench_workdir bench-broker broker polling redis raw

start_idle_poll_twin polling "$WORK" "$BIN/broker" --data-dir "$WORK/polling"
start_listening broker "$WORK" "$BIN/broker" --data-dir "$WORK/broker" --kafka-listen 127.0.0.1:0
BROKER_PID=${pids[-1]}
KAFKA_PORT=$(python3 -c 'import json,sys; print(next(e["port"] for e in map(json.loads, open(sys.argv[1])) if e["event"] == "listening-kafka"))' "$WORK/broker.out")
kafka_bench() { CQRS_BIN="$BIN/cqrs" .venv/bin/python Scripts/lib/kafka_bench.py "$@" --bootstrap "127.0.0.1:$KAFKA_PORT" --jframe "127.0.0.1:$PORT"; }
kafka_swift() { "$BENCH_BIN/kafka-bench" "$@" --bootstrap "127.0.0.1:$KAFKA_PORT" --jframe "127.0.0.1:$PORT" 2>/dev/null; }
# The default broker's CPU (user + system, clock ticks) so far, and a run's JSON line with the
# broker's CPU per record it took (broker_cpu_us_per_record): what each port costs the broker,
# beside the client's own client_cores.
broker_cpu_ticks() { awk '{print $14 + $15}' "/proc/$BROKER_PID/stat"; }
with_broker_cpu() {  # json ticks
  python3 -c 'import json,os,sys; d=json.loads(sys.argv[1]); r=d.get("records_per_s"); s=d.get("produces")
tick=os.sysconf("SC_CLK_TCK"); n=(s or 0)*d.get("batch",1)
if r and n: d["broker_cpu_us_per_record"]=round(int(sys.argv[2])/tick/n*1e6, 2)
print(json.dumps(d))' "$1" "$2"
}
redis-server --port 6390 --appendonly yes --appendfsync always --save '' --dir "$WORK/redis" --daemonize no >"$WORK/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do redis-cli -p 6390 ping >/dev/null 2>&1 && break; sleep 0.1; done

RESULTS="$WORK/results.jsonl"
redis_xadd() {  # batch, clients -> {"records_per_s":…,"p50_ms":…,"p99_ms":…}
  local batch=$1 clients=$2 n
  n=$(python3 -c "print(max(5000, int($RUN_SECONDS * {1: 3500, 16: 12000}.get($clients, 12000) * (1 if $batch == 1 else 12))))")
  redis-cli -p 6390 del s >/dev/null
  redis-benchmark -p 6390 -c "$clients" -P "$batch" -n "$n" --csv XADD s '*' f "$(printf 'x%.0s' $(seq 200))" 2>/dev/null |
    python3 -c 'import csv,sys,json; rows=list(csv.reader(sys.stdin)); r=rows[-1]; print(json.dumps({"records_per_s": float(r[1]), "p50_ms": float(r[4]), "p99_ms": float(r[6])}))'
}
# Redis's batches timed as broker-bench times ours, send to last reply (redis-benchmark's latency
# with -P is the pipeline's first reply): the baseline of the batched cases' p50 and p99.
redis_batch_round_trip() {  # batch, clients -> {"records_per_s":…,"p50_ms":…,"p99_ms":…}
  redis-cli -p 6390 del s >/dev/null
  python3 Scripts/lib/redis_batch_bench.py 6390 "$1" "$2" "$RUN_SECONDS"
}

for round in $(seq "$ROUNDS"); do
  step "round $round of $ROUNDS"
  for spec in $CASES; do
    batch=${spec%%:*}; producers=${spec##*:}
    runs=(
      "ours_produce_b${batch}_p${producers}|$BENCH_BIN/broker-bench produce --server 127.0.0.1:$PORT --batch $batch --producers $producers --seconds $RUN_SECONDS"
      "raw_b${batch}|$BENCH_BIN/broker-bench raw-append --directory $WORK/raw --batch $batch --seconds $RUN_SECONDS"
      "redis_b${batch}_p${producers}|redis_xadd $batch $producers"
    )
    [ "$batch" -gt 1 ] && runs+=("redis_rt_b${batch}_p${producers}|redis_batch_round_trip $batch $producers")
    [ "$KAFKA" = 1 ] && runs+=("kafka_produce_b${batch}_p${producers}|kafka_bench produce --batch $batch --producers $producers --seconds $RUN_SECONDS")
    [ "$KAFKA" = 1 ] && runs+=("kafka_librdkafka_produce_b${batch}_p${producers}|kafka_swift produce --batch $batch --producers $producers --seconds $RUN_SECONDS")
    [ "$KAFKA" = 1 ] && runs+=("kafka_raw_produce_b${batch}_p${producers}|kafka_swift produce-raw --batch $batch --producers $producers --seconds $RUN_SECONDS")
    [ -n "$POLL_PORT" ] && runs+=("ours_idle_poll_produce_b${batch}_p${producers}|$BENCH_BIN/broker-bench produce --server 127.0.0.1:$POLL_PORT --batch $batch --producers $producers --seconds $RUN_SECONDS")
    rotate_runs runs "$round"
    for entry in "${runs[@]}"; do
      label=${entry%%|*}
      before=$(broker_cpu_ticks)
      out="$(eval "${entry#*|}")"
      # Only the runs against the default broker (not Redis, the raw writer or the polling twin).
      case "$label" in ours_produce_* | kafka_*) out="$(with_broker_cpu "$out" $(($(broker_cpu_ticks) - before)))" ;; esac
      record "$label" "$out"
    done
  done
  record "ours_consume" "$("$BENCH_BIN/broker-bench" consume --server "127.0.0.1:$PORT" --records 500000 --via fetch)"
  record "ours_consume_subscribe" "$("$BENCH_BIN/broker-bench" consume --server "127.0.0.1:$PORT" --records 500000 --via subscribe)"
  record "ours_e2e" "$("$BENCH_BIN/broker-bench" end-to-end --server "127.0.0.1:$PORT" --messages 2000)"
  [ "$KAFKA" = 1 ] && record "kafka_consume" "$(kafka_bench consume --records 500000)"
  [ "$KAFKA" = 1 ] && record "kafka_librdkafka_consume" "$(kafka_swift consume --records 500000)"
done

python3 - "$RESULTS" "$CASES" <<'PY'
import sys
sys.path.insert(0, "Scripts/lib")
from bench_summary import Results, line
med = Results(sys.argv[1]).median
for spec in sys.argv[2].split():
    batch, producers = spec.split(":")
    ours, raw, redis = f"ours_produce_b{batch}_p{producers}", f"raw_b{batch}", f"redis_b{batch}_p{producers}"
    case = f"produce_batch{batch}_producers{producers}"
    line(case, "records_per_s", med(ours, "records_per_s"),
         [("redis-xadd-appendfsync-always", med(redis, "records_per_s")), ("raw-write-fdatasync", med(raw, "records_per_s"))])
    line(case, "mb_per_s", med(ours, "mb_per_s"), [])
    line(case, "broker_cpu_us_per_record", med(ours, "broker_cpu_us_per_record"), [])
    # A batch's latency has two Redis baselines: redis-benchmark's (to a pipeline's first reply)
    # and the batch's round trip (to its last reply, as ours is timed), when measured.
    redis_rt = f"redis_rt_b{batch}_p{producers}"
    for metric in ("p50_ms", "p99_ms"):
        baselines = [("redis-xadd-appendfsync-always", med(redis, metric))]
        if med(redis_rt, metric) is not None:
            baselines.append(("redis-xadd-batch-round-trip", med(redis_rt, metric)))
        line(case, metric, med(ours, metric), baselines, higher_is_better=False)
    polling = f"ours_idle_poll_produce_b{batch}_p{producers}"
    if med(polling, "records_per_s") is not None:
        line(case + "_idle_poll", "records_per_s", med(polling, "records_per_s"),
             [("redis-xadd-appendfsync-always", med(redis, "records_per_s")), ("raw-write-fdatasync", med(raw, "records_per_s"))])
        line(case + "_idle_poll", "p50_ms", med(polling, "p50_ms"), [("redis-xadd-appendfsync-always", med(redis, "p50_ms"))], higher_is_better=False)
        line(case + "_idle_poll", "p99_ms", med(polling, "p99_ms"), [("redis-xadd-appendfsync-always", med(redis, "p99_ms"))], higher_is_better=False)
for spec in sys.argv[2].split():
    batch, producers = spec.split(":")
    kafka, ours, redis = f"kafka_produce_b{batch}_p{producers}", f"ours_produce_b{batch}_p{producers}", f"redis_b{batch}_p{producers}"
    if med(kafka, "records_per_s") is None:
        continue
    case = f"kafka_produce_batch{batch}_producers{producers}"
    line(case, "records_per_s", med(kafka, "records_per_s"),
         [("jframe-produce", med(ours, "records_per_s")), ("redis-xadd-appendfsync-always", med(redis, "records_per_s"))])
    line(case, "p50_ms", med(kafka, "p50_ms"), [("jframe-produce", med(ours, "p50_ms")), ("redis-xadd-appendfsync-always", med(redis, "p50_ms"))],
         higher_is_better=False)
    line(case, "p99_ms", med(kafka, "p99_ms"), [("jframe-produce", med(ours, "p99_ms"))], higher_is_better=False)
    line(case, "broker_cpu_us_per_record", med(kafka, "broker_cpu_us_per_record"),
         [("jframe-produce", med(ours, "broker_cpu_us_per_record"))], higher_is_better=False)
    line(case, "client_cores", med(kafka, "client_cores"), [])
    # The same case from the Swift librdkafka client and from the raw one (no library).
    for suffix, label in (("_librdkafka", "kafka_librdkafka_produce"), ("_raw", "kafka_raw_produce")):
        run = f"{label}_b{batch}_p{producers}"
        if med(run, "records_per_s") is None:
            continue
        line(case + suffix, "records_per_s", med(run, "records_per_s"),
             [("jframe-produce", med(ours, "records_per_s")), ("redis-xadd-appendfsync-always", med(redis, "records_per_s"))])
        line(case + suffix, "p50_ms", med(run, "p50_ms"),
             [("jframe-produce", med(ours, "p50_ms")), ("redis-xadd-appendfsync-always", med(redis, "p50_ms"))], higher_is_better=False)
        line(case + suffix, "broker_cpu_us_per_record", med(run, "broker_cpu_us_per_record"),
             [("jframe-produce", med(ours, "broker_cpu_us_per_record"))], higher_is_better=False)
        line(case + suffix, "client_cores", med(run, "client_cores"), [])
if med("kafka_consume", "records_per_s") is not None:
    line("kafka_consume_one_partition", "records_per_s", med("kafka_consume", "records_per_s"),
         [("jframe-fetch", med("ours_consume", "records_per_s")), ("target-500k", 500000)])
if med("kafka_librdkafka_consume", "records_per_s") is not None:
    line("kafka_consume_one_partition_librdkafka", "records_per_s", med("kafka_librdkafka_consume", "records_per_s"),
         [("jframe-fetch", med("ours_consume", "records_per_s")), ("target-500k", 500000)])
line("consume_one_partition", "records_per_s", med("ours_consume", "records_per_s"), [("target-500k", 500000)])
line("consume_one_partition_subscribe", "records_per_s", med("ours_consume_subscribe", "records_per_s"), [("target-500k", 500000)])
line("end_to_end", "p50_ms", med("ours_e2e", "p50_ms"), [])
line("end_to_end", "p99_ms", med("ours_e2e", "p99_ms"), [])
PY
