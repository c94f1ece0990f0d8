# Multi-stage build of govsd and govsadm into a small runtime image.
# Run with: docker run --privileged --network host -v /etc/govs:/etc/govs govs
# (--privileged for BPF and AF_XDP, --network host to attach XDP to the host's NICs).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The BPF objects are committed (bpf/*_bpfel.o), so no clang is needed here.
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/ ./cmd/govsd ./cmd/govsadm

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends iproute2 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/govsd /out/govsadm /usr/local/bin/
ENTRYPOINT ["/usr/local/bin/govsd"]
CMD ["-c", "/etc/govs/govs.yaml"]
