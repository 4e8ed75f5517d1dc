# Build the manager binary. The builder runs on the build machine's platform and
# cross-compiles for the target's, so a multi-arch build (linux/amd64 and linux/arm64,
# as the release pipeline makes) needs no emulated compiler.
FROM --platform=$BUILDPLATFORM golang:1.26 AS builder
ARG TARGETOS
ARG TARGETARCH
# The version the binary reports (its User-Agent); the release sets it to the tag.
ARG VERSION=dev

WORKDIR /workspace
# Cache dependencies before copying the source, so source edits do not re-download them.
COPY go.mod go.sum ./
RUN go mod download

COPY cmd/ cmd/
COPY api/ api/
COPY internal/ internal/

RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o manager ./cmd/manager

# A distroless static image: no shell, no package manager, non-root.
FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /workspace/manager .
USER 65532:65532

ENTRYPOINT ["/manager"]
