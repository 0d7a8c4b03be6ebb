# costcast: a multi-stage build into a small non-root image.
#   docker build -t costcast:0.1.0 .
# Stage 1 compiles the release binary; stage 2 is distroless's glibc base with CA certificates
# and no shell, running as uid 65532 (nonroot), with the shipped jobs in /app/jobs.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so a source change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src benches \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && echo 'fn main() {}' > benches/ingest.rs \
    && cargo build --release --locked \
    && rm -rf src benches
COPY src src
COPY benches benches
COPY migrations migrations
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin costcast

FROM gcr.io/distroless/cc-debian12:nonroot
WORKDIR /app
COPY --from=build /src/target/release/costcast /usr/local/bin/costcast
COPY jobs /app/jobs
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/costcast"]
CMD ["serve", "--config", "/etc/costcast/costcast.toml"]
