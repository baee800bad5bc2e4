#!/usr/bin/env bash
# Installs what `make test` needs beyond Go. Each line of NEEDS is
# "command debian-package"; a command missing from PATH (or the extra
# directories below) means its package is installed. As root this runs
# apt-get; otherwise it prints the exact command and fails.
set -euo pipefail

NEEDS=(
  "protoc protobuf-compiler"     # make proto / proto-check
)

missing=()
for need in "${NEEDS[@]}"; do
  read -r cmd pkg <<<"$need"
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing Debian packages: ${missing[*]}" >&2
  echo "deps: run as root: $cmd" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
sh -c "$cmd"
