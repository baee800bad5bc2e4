#!/usr/bin/env bash
# Runs one development node on loopback (make run): builds bin/authnode,
# imports examples/demo-policy.yaml into ./data/authnode.db, mints a token
# for alice with the development key in ./data, prints commands to try the
# APIs, then runs the node in the foreground (Ctrl-C stops it).
#
# Development only: the node trusts ./data/dev-jwks.json and accepts
# mutations (sessions, revocation, invalidation) without a token.
#
# Ports: HTTP_PORT (default 8080), GRPC_PORT (9090), ADMIN_PORT (8081).
# Gossip stays on 127.0.0.1:7946 and peer gRPC on 127.0.0.1:9091. Extra
# arguments are passed to authnode serve, for example --log-level DEBUG.
set -euo pipefail

HTTP_PORT="${HTTP_PORT:-8080}"
GRPC_PORT="${GRPC_PORT:-9090}"
ADMIN_PORT="${ADMIN_PORT:-8081}"
GO="${GO:-go}"

DATA=./data
SOURCE="sqlite://$DATA/authnode.db"
POLICY=examples/demo-policy.yaml
DEMO_USER=alice

die() {
	echo "run.sh: $*" >&2
	exit 2
}

for var in HTTP_PORT GRPC_PORT ADMIN_PORT; do
	port="${!var}"
	if [[ ! "$port" =~ ^[0-9]{1,5}$ ]] || ((10#$port < 1 || 10#$port > 65535)); then
		die "$var=$port is not a port number (1-65535)"
	fi
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ -f "$POLICY" ]] || die "$POLICY not found"

# The demo API key is the one in the policy file, so the two cannot drift.
API_KEY="$(sed -n 's/^[[:space:]-]*key:[[:space:]]*\(ak_dev_[A-Za-z0-9_]*\).*$/\1/p' "$POLICY" | head -n 1)"
[[ -n "$API_KEY" ]] || die "no ak_dev_ API key in $POLICY"

echo "building bin/authnode"
"$GO" build -o bin/authnode ./cmd/authnode

[[ -d "$DATA" ]] || mkdir -m 700 "$DATA"
bin/authnode policy import --source "$SOURCE" "$POLICY"
TOKEN="$(bin/authnode token mint --dev --data-dir "$DATA" --sub "$DEMO_USER" --scope "read write")"

HTTP="http://127.0.0.1:$HTTP_PORT"
GRPC="127.0.0.1:$GRPC_PORT"
JSON="-H 'Content-Type: application/json'"

cat <<EOF

Development node: HTTP $HTTP, gRPC $GRPC, admin http://127.0.0.1:$ADMIN_PORT
Token for $DEMO_USER (scopes "read write", valid 1h; mint another with
  bin/authnode token mint --dev --data-dir $DATA --sub $DEMO_USER --scope "read write"):

TOKEN='$TOKEN'

Try, from another terminal:

# validate the token
curl -sS -X POST $HTTP/v1/tokens/validate $JSON -d '{"token":"$TOKEN"}'

# may alice write posts:1? (yes: editor)
curl -sS -X POST $HTTP/v1/authorize $JSON -d '{"user_id":"alice","resource":"posts:1","action":"write"}'

# whose API key is this? (alice's demo key "dev")
curl -sS -X POST $HTTP/v1/apikeys/verify $JSON -d '{"api_key":"$API_KEY"}'

# store alice's session for an hour, then read it back
curl -sS -X PUT $HTTP/v1/sessions/alice $JSON -d '{"data":{"theme":"dark"},"ttl_seconds":3600}'
curl -sS $HTTP/v1/sessions/alice

# the plan's metrics (docs/metrics.md lists them all)
curl -sS $HTTP/metrics | grep '^auth_cache_'

# the same over gRPC
grpcurl -plaintext -d '{"token":"$TOKEN"}' $GRPC avion.auth.v1.AuthService/ValidateToken
grpcurl -plaintext $GRPC list

EOF

exec bin/authnode serve \
	--node-name dev \
	--gossip-addr 127.0.0.1:7946 \
	--peer-addr 127.0.0.1:9091 \
	--grpc-addr "$GRPC" \
	--http-addr "127.0.0.1:$HTTP_PORT" \
	--admin-addr "127.0.0.1:$ADMIN_PORT" \
	--source "$SOURCE" \
	--jwks-file "$DATA/dev-jwks.json" \
	--jwt-issuer authnode-dev \
	--jwt-audience authnode-dev \
	--dev-insecure-api \
	"$@"
