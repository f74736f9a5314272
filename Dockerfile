# headless-dns container image: the release binary on distroless, running as non-root.
#   docker build -t REGISTRY/headless-dns:TAG .
# deploy/ runs it with `--config /etc/headless-dns/headless-dns.toml` (see deploy/README.md).

FROM rust:bookworm AS build
WORKDIR /src
COPY . .
# --locked: build exactly the dependency versions in Cargo.lock.
RUN cargo build --release --locked \
    && install -D -m 0755 target/release/headless-dns /out/headless-dns

# The `cc` variant carries glibc and libgcc, which the Rust binary links against; `nonroot`
# runs as UID/GID 65532 with no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/headless-dns /usr/local/bin/headless-dns
# Numeric, so that Kubernetes can verify runAsNonRoot without looking up a name.
USER 65532:65532
# DNS over UDP and TCP on an unprivileged port (the Service maps 53 to it); HTTP for
# /healthz, /readyz and /metrics.
EXPOSE 5353/udp 5353/tcp 8080
ENTRYPOINT ["/usr/local/bin/headless-dns"]
CMD ["--config", "/etc/headless-dns/headless-dns.toml"]
