#!/usr/bin/env bash
# Regenerates Go code from the .proto files under proto/ with pinned
# generators: protoc from Debian (protobuf-compiler), protoc-gen-go and
# protoc-gen-go-grpc installed into bin/ at the versions below.
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_VERSION="3.21.12"
PROTOC_GEN_GO="google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12"
PROTOC_GEN_GO_GRPC="google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.0"

command -v protoc >/dev/null || { echo "proto: protoc missing: run make deps" >&2; exit 1; }
have=$(protoc --version | awk '{print $2}')
if [ "$have" != "$PROTOC_VERSION" ]; then
  echo "proto: protoc $have found, $PROTOC_VERSION required (Debian bookworm's protobuf-compiler)" >&2
  exit 1
fi

bin="$PWD/bin/protoc-gen"
mkdir -p "$bin"
for tool in "$PROTOC_GEN_GO" "$PROTOC_GEN_GO_GRPC"; do
  name=$(basename "${tool%@*}")
  stamp="$bin/.$name-${tool#*@}"
  if [ ! -x "$bin/$name" ] || [ ! -f "$stamp" ]; then
    GOBIN="$bin" go install "$tool"
    rm -f "$bin/.$name-"*; touch "$stamp"
  fi
done

mapfile -t files < <(find proto -name '*.proto' | sort)
PATH="$bin:$PATH" protoc -I proto \
  --go_out=. --go_opt=module=github.com/avion/authnode \
  --go-grpc_out=. --go-grpc_opt=module=github.com/avion/authnode \
  "${files[@]}"
echo "proto: generated from ${#files[@]} file(s)"
