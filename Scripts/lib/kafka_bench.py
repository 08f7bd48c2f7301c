"""The Kafka-protocol cases of `Scripts/bench broker`, with confluent-kafka (librdkafka), shaped
like broker-bench's jframe cases so they compare one to one. Prints one JSON line.

  kafka_bench.py produce --bootstrap HOST:PORT --jframe HOST:PORT --batch B --producers P --seconds S
      P producers (one librdkafka client and connection each, in its own thread), each sending B
      records of 200 bytes to one fresh single-partition topic with acks=all, idempotence off (as
      broker-bench's jframe producer), and waiting for all B deliveries before the next B: a
      request of B records at a time, acknowledged after fdatasync. p50/p99: per batch;
      client_cores: the CPU this process used (every thread) per second of the run.
  kafka_bench.py consume --bootstrap HOST:PORT --jframe HOST:PORT --records N
      Fills a fresh partition with N records (jframe Produce, 1,000 a call), then reads it from
      the start with one assigned consumer: records/s.

Topics are created and deleted through the broker's jframe port (`cqrs` on PATH or CQRS_BIN)."""
import argparse
import json
import os
import resource
import subprocess
import threading
import time
import uuid

import confluent_kafka

CQRS = os.environ.get("CQRS_BIN", "cqrs")
VALUE = b'"' + b"x" * 198 + b'"'


def cqrs(jframe: str, *args: str, stdin: str | None = None):
    subprocess.run([CQRS, *args, "--broker", jframe], check=True, capture_output=True, text=True, input=stdin)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 3)


def produce(args) -> dict:
    topic = f"kbench-{uuid.uuid4().hex[:8]}"
    cqrs(args.jframe, "topics", "create", topic, "--partitions", "1")
    end = time.monotonic() + args.seconds
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []

    def run():
        producer = confluent_kafka.Producer({
            "bootstrap.servers": args.bootstrap, "acks": "all", "enable.idempotence": False, "linger.ms": 0,
            "batch.num.messages": max(args.batch, 1), "queue.buffering.max.messages": max(100000, args.batch * 4),
        })
        mine = []
        while time.monotonic() < end:
            pending = [args.batch]

            def delivered(error, _):
                if error:
                    errors.append(str(error))
                pending[0] -= 1

            started = time.monotonic()
            for _ in range(args.batch):
                producer.produce(topic, value=VALUE, partition=0, on_delivery=delivered)
            # flush waits in librdkafka with the GIL released: the threads do not spin on it.
            producer.flush(30)
            if pending[0] > 0:
                errors.append(f"{pending[0]} deliveries still pending after 30 s")
            mine.append((time.monotonic() - started) * 1000)
        producer.flush(10)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run) for _ in range(args.producers)]
    cpu_before = process_cpu_seconds()
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    client_cores = (process_cpu_seconds() - cpu_before) / elapsed
    cqrs(args.jframe, "topics", "delete", topic)
    if errors:
        raise SystemExit(f"delivery errors: {errors[:3]}")
    rate = len(latencies) * args.batch / elapsed
    return {"case": "kafka_produce", "batch": args.batch, "producers": args.producers, "produces": len(latencies),
            "records_per_s": round(rate), "p50_ms": percentile(latencies, 0.5), "p99_ms": percentile(latencies, 0.99),
            "client_cores": round(client_cores, 2)}


def process_cpu_seconds() -> float:
    """CPU time of this process, every thread (librdkafka's included), user and system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def consume(args) -> dict:
    topic = f"kbench-{uuid.uuid4().hex[:8]}"
    cqrs(args.jframe, "topics", "create", topic, "--partitions", "1")
    line = VALUE.decode() + "\n"
    for _ in range(args.records // 1000):
        cqrs(args.jframe, "produce", topic, "--partition", "0", stdin=line * 1000)
    consumer = confluent_kafka.Consumer({"bootstrap.servers": args.bootstrap, "group.id": "kbench", "enable.auto.commit": False,
                                         "fetch.max.bytes": 52428800, "max.partition.fetch.bytes": 4194304})
    consumer.assign([confluent_kafka.TopicPartition(topic, 0, 0)])
    started = time.monotonic()
    read = 0
    while read < args.records:
        for message in consumer.consume(10000, 1.0):
            if message.error() is None:
                read += 1
    elapsed = time.monotonic() - started
    consumer.close()
    cqrs(args.jframe, "topics", "delete", topic)
    return {"case": "kafka_consume", "records": read, "records_per_s": round(read / elapsed)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["produce", "consume"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--jframe", required=True)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--producers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--records", type=int, default=500000)
    args = parser.parse_args()
    print(json.dumps(produce(args) if args.mode == "produce" else consume(args)))


if __name__ == "__main__":
    main()
