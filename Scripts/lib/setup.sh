# Shared by the Scripts/: find or install the tools a fresh Debian machine lacks.
# Sourced, not run.

step() { printf '\n==> %s\n' "$*" >&2; }

apt_updated=false
apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: $* (run as root, or install them)" >&2
    exit 1
  fi
  if [ "$apt_updated" = false ]; then
    apt-get update -qq >&2
    apt_updated=true
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

ensure_swift() {
  if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
  fi
  command -v swift >/dev/null 2>&1 || { echo "Swift 6 is required (https://swift.org/install)" >&2; exit 1; }
  # The event store links the system SQLite (CSQLite).
  [ -f /usr/include/sqlite3.h ] || apt_install libsqlite3-dev pkg-config
  # The HTTP/2 edge links the system libnghttp2 (CNGHTTP2).
  [ -f /usr/include/nghttp2/nghttp2.h ] || apt_install libnghttp2-dev pkg-config
  # The broker's Kafka port decodes record batches with the codecs Kafka clients use (CCompressionCodecs).
  { [ -f /usr/include/zlib.h ] && [ -f /usr/include/snappy-c.h ] && [ -f /usr/include/lz4frame.h ] && [ -f /usr/include/zstd.h ]; } \
    || apt_install zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev
  # The services' Kafka bus (--bus kafka://…) runs on the system librdkafka (CRdKafka).
  [ -f /usr/include/librdkafka/rdkafka.h ] || apt_install librdkafka-dev pkg-config
}

# kcat (Debian's, on librdkafka 2.0.2): the Kafka CLI the Kafka-port tests and the demo use.
ensure_kcat() {
  command -v kcat >/dev/null 2>&1 || apt_install kcat
}

# A venv in .venv with what the contract tests use: pytest and jsonschema, and for the HTTP/2
# edge the clients no one here wrote: grpcio (gRPC), httpx with h2 (Connect), h2 (raw frames); for
# the broker's Kafka port two Kafka clients: confluent-kafka (librdkafka) and kafka-python (pure
# Python, with its codecs: lz4, zstandard, python-snappy).
PYTHON_PACKAGES=(pytest jsonschema grpcio "httpx[http2]" h2 prometheus-client confluent-kafka "kafka-python==3.0.12" lz4 zstandard python-snappy)
ensure_python_venv() {
  command -v python3 >/dev/null 2>&1 || apt_install python3
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import pytest, jsonschema, grpc, httpx, h2, prometheus_client, confluent_kafka, kafka, lz4, zstandard, snappy" 2>/dev/null; then
    step "Python venv with ${PYTHON_PACKAGES[*]}"
    rm -rf .venv
    python3 -m venv .venv 2>/dev/null || { apt_install python3-venv; python3 -m venv .venv; }
    .venv/bin/python -m pip install -q --disable-pip-version-check "${PYTHON_PACKAGES[@]}" >&2
  fi
}

# Release builds of this package's binaries, the way the containers ship them: Swift's runtime
# and Foundation linked in (`--static-swift-stdlib`, swift.org's advice for deployment), and
# jemalloc as the malloc (`-Xlinker -ljemalloc`, as Vapor's deployment template links it: glibc's
# allocator spent 14% of the command-service's time in a batch's large buffers; the shared
# library, as jemalloc's static one does not link with the static Swift runtime). Every script
# builds them with these flags, so one build serves the benchmarks, the instruction counts and
# the compose demo (a compiler flag recompiles every module; a linker flag only relinks).
# Exclusive access is checked when compiling, not at run time, in these builds
# (`-enforce-exclusivity=unchecked`, as the Hummingbird and Vapor entries of the TechEmpower suite
# build): the run-time checks (`swift_beginAccess`, mostly SwiftNIO's class properties) were 12-14%
# of a server's instructions per unary call. What they would catch is still caught where they stay
# on: every debug build, so `Scripts/test`, the contract tests and the chaos runs; and the Swift 6
# language mode rules out the data races behind most violations when compiling. Benchmarks/README.md
# has the counts.
# Usage: release_build ARGS...
release_build() {
  ls /usr/lib/*-linux-gnu/libjemalloc.so >/dev/null 2>&1 || apt_install libjemalloc-dev
  swift build -c release --static-swift-stdlib -Xlinker -ljemalloc -Xswiftc -enforce-exclusivity=unchecked "$@"
}

# Fails unless the server binary $1 runs as a release build should, as its "listening" line
# says: Swift Concurrency on the event loops' hook (`ConcurrencyOnEventLoops`; a build where the
# runtime's hook variable cannot be found falls back without failing, to NIO's takeover or to
# Swift's own pool) and jemalloc as its malloc (`MallocInUse`; a build without the linker flag
# runs on glibc's). Further arguments go to the server (a data directory is made for
# --data-dir {}). Usage: require_release_server BINARY [ARGS...]
require_release_server() {
  local binary=$1 dir line
  shift
  dir="$(mktemp -d)"
  line="$(timeout 20 "$binary" --listen 127.0.0.1:0 --log-level warning "${@/#\{\}/$dir}" 2>/dev/null | head -n 1 || true)"
  rm -rf "$dir"
  case "$line" in
    *'"globalExecutor":"hook"'*'"malloc":"jemalloc"'*) ;;
    *) echo "$binary is not running as a release build should: on the event loops' executor hook and jemalloc (it printed: $line)" >&2; return 1 ;;
  esac
}

# Builds benchmark executables (their own package, Benchmarks/Package.swift, so the main package's
# `swift build` builds the product only) in release mode, linked as the servers are
# (`release_build`: with the static runtime a client's runtime calls skip the dynamic linker's
# thread-local lookups, about 5% of a produce's instructions in broker-bench), and sets BENCH_BIN
# to where they are. Usage: build_bench_tools PRODUCT...
build_bench_tools() {
  local bench=(--package-path Benchmarks --scratch-path .build-bench)
  for product in "$@"; do release_build "${bench[@]}" --product "$product" >&2; done
  BENCH_BIN="$(release_build "${bench[@]}" --show-bin-path)"
}

# For the benchmark scripts: starts one of our server binaries on port 0 in the background
# (its pid joins the caller's `pids`) and sets PORT from the JSON line it prints once listening.
# A benchmark's work directory, on the same disk as the repository (not a tmpfs /tmp: durability
# costs what it costs there), with SUBDIRS made; the servers started with start_listening are
# stopped and the directory removed on exit. Sets WORK. Usage: bench_workdir NAME SUBDIRS...
bench_workdir() {
  WORK="$(pwd)/.build/$1"
  shift
  rm -rf "$WORK"
  mkdir -p "$WORK"
  for sub in "$@"; do mkdir -p "$WORK/$sub"; done
  pids=()
  trap 'for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
}

# Usage: start_listening NAME LOGDIR BINARY ARGS...
start_listening() {
  local name=$1 logdir=$2
  shift 2
  "$@" --listen 127.0.0.1:0 --log-level warning >"$logdir/$name.out" 2>"$logdir/$name.err" &
  pids+=($!)
  wait_for_listening "$logdir/$name" 10
}

# Sets PORT from the {"event":"listening",…} line in PREFIX.out once a server prints it; after
# SECONDS without it, shows PREFIX.err and exits. Usage: wait_for_listening PREFIX SECONDS
wait_for_listening() {
  local prefix=$1 tries=$(($2 * 10))
  PORT=""
  for _ in $(seq "$tries"); do
    PORT=$(python3 -c 'import json,sys; print(next(e["port"] for e in map(json.loads, open(sys.argv[1])) if e["event"] == "listening"))' \
      "$prefix.out" 2>/dev/null) && break
    sleep 0.1
  done
  [ -n "$PORT" ] || { cat "$prefix.err" >&2; exit 1; }
}

# Starts a second copy of a server with --idle-poll-us "$IDLE_POLL_US" beside the default one, unless
# IDLE_POLL_US is 0; POLL_PORT says where (empty when skipped). Usage: start_idle_poll_twin NAME LOGDIR CMD...
start_idle_poll_twin() {
  POLL_PORT=""
  [ "${IDLE_POLL_US:-0}" -gt 0 ] || return 0
  start_listening "$@" --idle-poll-us "$IDLE_POLL_US"
  POLL_PORT=$PORT
}

# Rotates the array named $1 left by (round $2 - 1), so each round starts from a different run.
rotate_runs() {
  local -n list=$1
  local n=$(( ($2 - 1) % ${#list[@]} ))
  list=("${list[@]:n}" "${list[@]:0:n}")
}

# Runs ROUNDS interleaved rounds over CONCURRENCIES: for each, the function named $1, given the
# concurrency, fills the array `runs` with "label|command" entries; they run rotated (each round
# starts from a different one) and each result is recorded under its label.
interleaved_rounds() {  # fill_function
  local fill=$1 round concurrency entry
  for round in $(seq "$ROUNDS"); do
    step "round $round of $ROUNDS"
    for concurrency in $CONCURRENCIES; do
      runs=()
      "$fill" "$concurrency"
      rotate_runs runs "$round"
      for entry in "${runs[@]}"; do record "${entry%%|*}" "$(eval "${entry#*|}")"; done
    done
  done
}

# Appends one benchmark result (a JSON line) to $RESULTS under a label, echoing it to stderr.
record() {  # label, json line
  echo "$2" >&2
  python3 -c 'import json,sys; d=json.loads(sys.argv[2]); d["label"]=sys.argv[1]; print(json.dumps(d))' "$1" "$2" >>"$RESULTS"
}
