#!/usr/bin/env bash
# Checks the operator monitoring files under monitoring/: the Prometheus
# rules (promtool check rules), their unit tests (promtool test rules) and
# the Grafana dashboard's JSON. promtool comes from Debian's prometheus
# package (2.42 on bookworm); jq from Debian's jq package.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1; then
	echo "monitoring: promtool not found: install Debian's prometheus package (apt-get install prometheus)" >&2
	exit 1
fi
if ! command -v jq >/dev/null 2>&1; then
	echo "monitoring: jq not found: install Debian's jq package (apt-get install jq)" >&2
	exit 1
fi

echo "== promtool check rules"
promtool check rules monitoring/alerts.yml
echo "== promtool test rules"
promtool test rules monitoring/alerts_test.yml
echo "== dashboard JSON"
jq empty monitoring/grafana-dashboard.json
echo "monitoring/grafana-dashboard.json: valid JSON"
