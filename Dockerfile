# Multi-stage build of govsd and govsadm into a small runtime image.
# Run with:
#   docker run --network host \
#     --cap-add BPF --cap-add PERFMON --cap-add NET_ADMIN --cap-add IPC_LOCK --cap-add SYS_NICE \
#     -v /sys/fs/bpf:/sys/fs/bpf -v /etc/govs:/etc/govs govs
# --network host: XDP attaches to the host's NICs. The capabilities are
# govsd.service's (packaging/systemd/govsd.service explains each); Docker's
# default set already has NET_RAW (AF_XDP sockets) and CHOWN
# (director.control_group). /sys/fs/bpf: the host's bpf filesystem, where
# the state a restart keeps is pinned (a container's /sys is read-only and
# has none). README "Docker" says what was and was not tried.
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
