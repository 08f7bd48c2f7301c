# One image holding the broker, the command-service, the query-service and the cqrs CLI; the
# compose file runs each service as its own container from it.
#
# On a normal machine the binaries are built inside the Swift image:
#     docker compose up -d --build
# Where no registry can be reached (see Scripts/compose-demo), they are built on the host with
# `swift build -c release --static-swift-stdlib -Xlinker -ljemalloc`, copied to .build/container/, and taken from
# the `prebuilt` stage:
#     podman build --pull=never --build-arg BINARIES=prebuilt -t cqrs:latest .
# Stages that are not used are skipped. Every image made here carries the label
# dev.cqrs.image, so a rebuild can prune the images it left untagged (Scripts/compose-demo does).
ARG BINARIES=build

FROM swift:6.3-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libsqlite3-dev libnghttp2-dev pkg-config \
        zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev librdkafka-dev libjemalloc-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources Sources
COPY Benchmarks Benchmarks
COPY Tests Tests
# jemalloc as the malloc, its shared library (the static one does not link with the static Swift
# runtime), exclusivity checked when compiling only: see release_build in Scripts/lib/setup.sh.
RUN for product in broker command-service query-service cqrs; do \
        swift build -c release --static-swift-stdlib -Xlinker -ljemalloc -Xswiftc -enforce-exclusivity=unchecked \
            --product "$product" || exit 1; done \
    && mkdir /out \
    && cp .build/release/broker .build/release/command-service .build/release/query-service .build/release/cqrs /out/

FROM scratch AS prebuilt
LABEL dev.cqrs.image=prebuilt
COPY .build/container/ /out/

FROM ${BINARIES} AS binaries

# PostgreSQL for docker-compose.yml's `postgres` profile, from Debian's packages like the rest
# (build it with --target postgres; the default build skips it).
FROM debian:bookworm-slim AS postgres
LABEL dev.cqrs.image=postgres
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-15 && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data && chown postgres:postgres /var/lib/postgresql/data
COPY Scripts/lib/postgres-container.sh /usr/local/bin/postgres-container
USER postgres
ENV PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/postgres-container"]

FROM debian:bookworm-slim
LABEL dev.cqrs.image=services
# The libraries the binaries take from the system (the Swift runtime is static): SQLite, nghttp2,
# the codecs of the broker's Kafka port (zlib, snappy, lz4, zstd), librdkafka (the services'
# Kafka bus, --bus kafka://…) and jemalloc (the malloc).
RUN ( ls /usr/lib/*-linux-gnu/libsqlite3.so.0 /usr/lib/*-linux-gnu/libnghttp2.so.14 /usr/lib/*-linux-gnu/libz.so.1 \
        /usr/lib/*-linux-gnu/libsnappy.so.1 /usr/lib/*-linux-gnu/liblz4.so.1 /usr/lib/*-linux-gnu/libzstd.so.1 \
        /usr/lib/*-linux-gnu/librdkafka.so.1 /usr/lib/*-linux-gnu/libjemalloc.so.2 ) >/dev/null 2>&1 \
    || (apt-get update && apt-get install -y --no-install-recommends libsqlite3-0 libnghttp2-14 zlib1g libsnappy1v5 liblz4-1 libzstd1 librdkafka1 libjemalloc2 \
        && rm -rf /var/lib/apt/lists/*)
COPY --from=binaries /out/ /usr/local/bin/
# /shared: a volume replicas share (the relay's key, in the compose file's `postgres` profile).
RUN useradd --system --home-dir /data --create-home cqrs && mkdir /shared && chown cqrs /shared
USER cqrs
WORKDIR /data
VOLUME /data
