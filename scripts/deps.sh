#!/usr/bin/env bash
# Installs what `make test` needs beyond Go. Each line of NEEDS is
# "debian-package check...": the package is installed when the check (a
# shell command) fails. As root this runs apt-get; otherwise it prints the
# exact command and fails.
set -euo pipefail

NEEDS=(
  "protobuf-compiler command -v protoc"                       # make proto / proto-check
  "libprotobuf-dev test -f /usr/include/google/protobuf/timestamp.proto" # well-known types for make proto
  "postgresql compgen -G '/usr/lib/postgresql/*/bin/postgres'" # the store suite's PostgreSQL run
  "redis-server command -v redis-server"                      # the Redis fallback's tests
  "prometheus command -v promtool"                            # make monitoring; the live /metrics check
  "jq command -v jq"                                          # make monitoring
)

missing=()
for need in "${NEEDS[@]}"; do
  pkg=${need%% *}
  check=${need#* }
  eval "$check" >/dev/null 2>&1 || missing+=("$pkg")
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
