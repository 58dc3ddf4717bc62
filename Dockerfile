# Multi-stage build: compile with the locked dependency set, run as a non-root user.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin hotline-gateway

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/hotline hotline \
    && mkdir -p /var/lib/hotline/config /var/lib/hotline/data && chown -R hotline /var/lib/hotline
COPY --from=build /src/target/release/hotline-gateway /usr/local/bin/hotline-gateway
COPY --chown=hotline config/ /var/lib/hotline/config/
USER hotline
WORKDIR /var/lib/hotline
# The embedded store (config/docker.toml): acknowledged orders must outlive the container.
VOLUME /var/lib/hotline/data
# Beyond loopback the secrets this repository publishes would let anyone in (the gateway says so
# with an ERROR at every start), so the image does not serve config/gateway.toml (the demo):
# config/docker.toml has none and takes yours from HOTLINE__... .
ENV HOTLINE__SERVER__LISTEN=0.0.0.0:8080
EXPOSE 8080
# SIGTERM drains in-flight requests before exit.
STOPSIGNAL SIGTERM
ENTRYPOINT ["hotline-gateway"]
CMD ["serve", "--config", "config/docker.toml"]
