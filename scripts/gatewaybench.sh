#!/usr/bin/env bash
# scripts/gatewaybench.sh builds and runs tools/gatewaybench: the gateway
# against the upstream reached directly and against a bare Go reverse proxy
# (the floor), at 1 and 32 clients, 64 B and 4 KB results, JSON and SSE
# answers, rounds interleaved; then profiles the gateway and the floor under
# the 32-client 4 KB JSON cell into $PROFILES (default
# ${TMPDIR:-/tmp}/gatewaybench-profiles, outside the tree).
#
#   scripts/gatewaybench.sh [gatewaybench flags, e.g. -requests 5000 -rounds 5]
#
# It measures; it is not part of the test suite. Run it on a quiet machine,
# with nice on a shared one (the figures are relative to the floor measured
# beside them, so they hold as long as the load is even).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/agentid-gatewaybench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

cd "$ROOT"
go build -o "$WORK/gatewaybench" ./tools/gatewaybench
uptime
PROFILES="${PROFILES:-${TMPDIR:-/tmp}/gatewaybench-profiles}"
"$WORK/gatewaybench" -profile "$PROFILES" "$@"
echo
echo "read the profiles with: go tool pprof -top $PROFILES/gateway.pprof"
