#!/usr/bin/env bash
# Regenerates proto/*.pb.go from proto/shoal.proto with pinned generators.
# Needs protoc (Debian: apt-get install protobuf-compiler).
set -euo pipefail

PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.1

top=$(git rev-parse --show-toplevel)
cd "$top"
[ -f proto/shoal.proto ] || { echo "genproto: run from the shoal repository" >&2; exit 1; }
command -v protoc >/dev/null || { echo "genproto: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }

bin="$top/.cache/protoc-bin"
mkdir -p "$bin"
GOBIN="$bin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
GOBIN="$bin" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"

PATH="$bin:$PATH" protoc -I proto \
  --go_out=proto --go_opt=paths=source_relative \
  --go-grpc_out=proto --go-grpc_opt=paths=source_relative \
  proto/shoal.proto
