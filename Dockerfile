# Writ: multi-stage build, slim non-root runtime.
# NOTE: no Docker engine is available where Writ is developed, so this image build is
# kept correct by reading and is untested (see README).

FROM rust:1-bookworm AS build
WORKDIR /src
# SQLite and libpq are bundled and compiled from source: only the toolchain and a C compiler.
COPY Cargo.toml Cargo.lock clippy.toml ./
COPY .cargo ./.cargo
COPY src ./src
COPY migrations ./migrations
COPY config ./config
COPY templates ./templates
RUN cargo build --release --locked --bin writ

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin writ \
    && mkdir -p /data /etc/writ \
    && chown writ:writ /data
COPY --from=build /src/target/release/writ /usr/local/bin/writ
COPY config /etc/writ/config
WORKDIR /etc/writ
ENV WRIT_SERVER__HOST=0.0.0.0 \
    WRIT_SERVER__PORT=8080 \
    WRIT_DATABASE__URL=sqlite:///data/writ.db \
    WRIT_LOG__FORMAT=json
USER writ
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/writ"]
CMD ["serve"]
