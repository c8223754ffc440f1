#!/usr/bin/env bash
# ensure-spire.sh builds spire-server and spire-agent from the Go module proxy
# into a per-machine cache and prints the directory holding them.
#
# Prebuilt SPIRE releases cannot be downloaded here, and `go install …@version`
# fails on a version-list lookup, so we download the module source with
# `go mod download` and build the two commands from a writable copy of it.
# The script is idempotent: when both binaries are present and report the
# pinned version, it only prints the directory. Progress goes to stderr; the
# bin directory is the only thing on stdout, so callers can do
#   SPIRE_BIN_DIR="$(scripts/ensure-spire.sh)"
set -euo pipefail

SPIRE_VERSION="${SPIRE_VERSION:-v1.13.3}"
CACHE_ROOT="${AGENTID_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agentid}"
DEST="$CACHE_ROOT/spire-$SPIRE_VERSION"
BIN="$DEST/bin"

log() { printf 'ensure-spire: %s\n' "$*" >&2; }
# shellcheck source=cached-build.sh
source "$(dirname "${BASH_SOURCE[0]}")/cached-build.sh"

have_binaries() {
	[[ -x "$BIN/spire-server" && -x "$BIN/spire-agent" ]] || return 1
	# A binary that cannot print its version (or panics at start) is not one
	# we trust: rebuild it.
	local v
	v="$("$BIN/spire-server" --version 2>&1)" || return 1
	[[ "$v" == "${SPIRE_VERSION#v}"* ]] || return 1
	"$BIN/spire-agent" --version >/dev/null 2>&1
}

cached_or_lock have_binaries

log "downloading github.com/spiffe/spire@$SPIRE_VERSION"
moddir="$(go mod download -json "github.com/spiffe/spire@$SPIRE_VERSION" |
	sed -n 's/^[[:space:]]*"Dir":[[:space:]]*"\(.*\)",\{0,1\}$/\1/p')"
if [[ -z "$moddir" || ! -f "$moddir/go.mod" ]]; then
	log "could not locate the downloaded module directory"
	exit 1
fi

# The module cache is read-only; the build writes nothing there, but copying
# to a writable directory keeps go from refusing on read-only vendor/state.
work="$(mktemp -d "${TMPDIR:-/tmp}/spire-build.XXXXXX")"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -R "$moddir/." "$work/src"
chmod -R u+w "$work/src"

log "building spire-server and spire-agent (this takes ~15 minutes cold on 2 cores)"
start=$(date +%s)
tmpbin="$work/bin"
mkdir -p "$tmpbin"
(
	cd "$work/src"
	# GOFLAGS=-mod=mod lets go resolve the module graph from go.sum without
	# a vendor directory; GOWORK=off isolates us from any enclosing go.work.
	# No version ldflags: SPIRE parses its version as semver at start-up, and
	# the default "1.13.3-dev-unk" is what it expects.
	GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED="${CGO_ENABLED:-1}" \
		go build -trimpath -o "$tmpbin/" ./cmd/spire-server ./cmd/spire-agent
)
mkdir -p "$BIN"
mv -f "$tmpbin/spire-server" "$tmpbin/spire-agent" "$BIN/"
log "built in $(( $(date +%s) - start ))s"
printf '%s\n' "$BIN"
