# tollgate's container image: a release binary on a small non-root base.
#
#   docker build -t tollgate .
#   docker run --rm -p 8080:8080 -e JWT_SECRET_KEY=... \
#       -v "$PWD/config:/app/config:ro" tollgate
#
# The build step runs the same command CI runs (.ci/assets), since no
# container engine runs in CI to build the image itself:
#   cargo build --release --locked --bin tollgate
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY config config
COPY benches benches
RUN cargo build --release --locked --bin tollgate

# distroless/cc carries glibc and CA certificates and nothing else: no shell,
# no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
WORKDIR /app
COPY --from=build /src/target/release/tollgate /usr/local/bin/tollgate
COPY config/tollgate.toml config/jwks.json /app/config/
ENV TOLLGATE_CONFIG=/app/config/tollgate.toml
EXPOSE 8080 9901
USER nonroot
# The image has no shell and no curl: tollgate probes its own admin
# listener (the default admin.address, 127.0.0.1:9901).
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD ["/usr/local/bin/tollgate", "health"]
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["run"]
