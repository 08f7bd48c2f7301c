"""Redis XADD batches timed the way broker-bench times a produce: from sending a batch to its last
reply.

Why not redis-benchmark's latency: with `-P B` it records, for every command of a pipeline, the
time to the pipeline's *first* reply, so at B = 1000 its p50 is one small append and fsync, while
broker-bench's p50 is the whole batch acknowledged. This client gives Redis the same measure: P
connections (asyncio, one thread, so the client's own work stays small beside Redis's), each
sending B pipelined `XADD s * f <200 bytes>` and waiting for all B replies before the next batch.
Redis's throughput stays redis-benchmark's (its C client is the faster one); this is for latency.

Usage: redis_batch_bench.py PORT BATCH PRODUCERS SECONDS
Prints {"records_per_s", "p50_ms", "p99_ms", "batches"} as one JSON line.
"""

import asyncio
import json
import sys
import time

VALUE = b"x" * 200
XADD = b"*5\r\n$4\r\nXADD\r\n$1\r\ns\r\n$1\r\n*\r\n$1\r\nf\r\n$%d\r\n%s\r\n" % (len(VALUE), VALUE)


class RedisFailed(Exception):
    """Redis closed the connection or answered an error: the run measured nothing."""


async def producer(port: int, batch: int, deadline: float, latencies: list) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    pipeline = XADD * batch
    sent = 0
    while time.monotonic() < deadline:
        start = time.perf_counter()
        writer.write(pipeline)
        # Each reply is a bulk string, "$N\r\n<id>\r\n": two line ends. Counted with the last
        # byte read before, so a line end split between two reads counts once; an error reply
        # starts a line with "-" (an id never does: it starts with its milliseconds).
        line_ends, last = 0, b"\n"
        while line_ends < 2 * batch:
            data = await reader.read(1 << 20)
            if not data:
                raise RedisFailed("redis closed the connection")
            joined = last + data
            if b"\n-" in joined:
                raise RedisFailed(f"redis answered an error: {data[:120]!r}")
            line_ends += joined.count(b"\r\n")
            last = data[-1:]
        latencies.append(time.perf_counter() - start)
        sent += batch
    writer.close()
    await writer.wait_closed()
    return sent


async def main(port: int, batch: int, producers: int, seconds: float) -> None:
    latencies: list = []
    start = time.monotonic()
    counts = await asyncio.gather(*(producer(port, batch, start + seconds, latencies) for _ in range(producers)))
    elapsed = time.monotonic() - start
    latencies.sort()
    print(json.dumps({
        "records_per_s": round(sum(counts) / elapsed),
        "p50_ms": round(latencies[len(latencies) // 2] * 1e3, 3),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3, 3),
        "batches": len(latencies),
    }))


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        sys.exit(0 if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help") else 2)
    try:
        asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
    except (RedisFailed, OSError) as error:
        print(f"redis_batch_bench: {error}", file=sys.stderr)
        sys.exit(1)
