#!/usr/bin/env bash
# scripts/serverbench.sh runs tools/serverbench against every store: memory,
# a private Redis and a private PostgreSQL (logged and UNLOGGED tables),
# each started here on a free loopback port with its own data directory and
# removed at the end (never the servers a machine may run on 6379/5432).
#
#   scripts/serverbench.sh [serverbench flags, e.g. -requests 20000 -rounds 3]
#
# It measures; it is not part of the test suite. Run it on a quiet machine.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/agentid-serverbench.XXXXXX")"
chmod 755 "$WORK"
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	if [[ -n "${PGBIN:-}" && -d "$WORK/pg" ]]; then
		as_postgres "$PGBIN/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null 2>&1 || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
as_postgres() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

command -v redis-server >/dev/null || { echo "serverbench.sh: redis-server not found (apt-get install redis-server)" >&2; exit 1; }
# Debian links initdb and pg_ctl into PATH but not createdb: use the
# directory the real binaries live in.
PGBIN="$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | tail -1)")")"
[[ -x "$PGBIN/initdb" ]] || { echo "serverbench.sh: initdb not found (apt-get install postgresql)" >&2; exit 1; }

RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" --logfile "$WORK/redis.log" &
PIDS+=($!)

PPORT=$(free_port)
mkdir -p "$WORK/pg"
[[ $(id -u) == 0 ]] && chown postgres "$WORK/pg"
as_postgres "$PGBIN/initdb" -D "$WORK/pg" -U agentid --auth=trust >/dev/null
as_postgres "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/log" -w \
	-o "-p $PPORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
# One database per table kind: agentid creates its tables UNLOGGED or not
# when it first opens a database.
as_postgres "$PGBIN/createdb" -h 127.0.0.1 -p "$PPORT" -U agentid logged
as_postgres "$PGBIN/createdb" -h 127.0.0.1 -p "$PPORT" -U agentid unlogged

cd "$ROOT"
go build -o "$WORK/serverbench" ./tools/serverbench
go build -o "$WORK/agentid" ./cmd/agentid
for store in memory "redis://127.0.0.1:$RPORT/0" "postgres://agentid@127.0.0.1:$PPORT/logged" \
	"postgres://agentid@127.0.0.1:$PPORT/unlogged?unlogged=true"; do
	echo
	echo "==> $store"
	"$WORK/serverbench" -agentid "$WORK/agentid" -store "$store" "$@"
done
