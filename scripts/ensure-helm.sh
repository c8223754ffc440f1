#!/usr/bin/env bash
# ensure-helm.sh builds the helm CLI from the Go module proxy into a
# per-machine cache and prints the directory holding it, for the render test
# of deploy/helm/agentid-operator (HELM_BIN_DIR).
#
# Prebuilt helm releases cannot be downloaded here, so helm is built from a
# scratch module that requires helm.sh/helm/v4 at the pinned version
# (18 minutes measured cold on 2 cores shared with the SPIRE and
# kube-apiserver builds; helm brings its own k8s.io modules, so the
# project's go.mod is not involved). The version is stamped with the
# ldflags of helm's Makefile, so that `helm version` reports it and a stale
# cache is told apart. The script is idempotent: when the binary is present
# and reports the pinned version, it only prints the directory. Progress
# goes to stderr; the directory is the only thing on stdout, so callers can
# do
#   HELM_BIN_DIR="$(scripts/ensure-helm.sh)"
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v4.3.2}"
CACHE_ROOT="${AGENTID_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agentid}"
DEST="$CACHE_ROOT/helm-$HELM_VERSION"
BIN="$DEST/bin"

log() { printf 'ensure-helm: %s\n' "$*" >&2; }
# shellcheck source=cached-build.sh
source "$(dirname "${BASH_SOURCE[0]}")/cached-build.sh"

have_helm() {
	[[ -x "$BIN/helm" ]] || return 1
	local v
	v="$("$BIN/helm" version --template '{{.Version}}' 2>&1)" || return 1
	[[ "$v" == "$HELM_VERSION" ]]
}

cached_or_lock have_helm

work="$(mktemp -d "${TMPDIR:-/tmp}/helm-build.XXXXXX")"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$BIN" "$work/mod"

log "building helm $HELM_VERSION (minutes cold: 18 measured on 2 shared cores)"
start=$SECONDS
cat >"$work/mod/go.mod" <<EOF
module agentid.local/helm

go 1.26

require helm.sh/helm/v4 $HELM_VERSION
EOF
(
	cd "$work/mod"
	# GOWORK=off isolates us from any enclosing go.work; -mod=mod lets go
	# resolve and record the module graph of the scratch module;
	# GOTOOLCHAIN=local keeps the machine's Go.
	GOWORK=off GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 \
		go build -trimpath \
		-ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
		-o "$work/helm.bin" helm.sh/helm/v4/cmd/helm
)
mv -f "$work/helm.bin" "$BIN/helm"
have_helm || { log "the built helm does not report $HELM_VERSION: $("$BIN/helm" version 2>&1 | head -1)"; exit 1; }
log "helm built in $((SECONDS - start))s"
printf '%s\n' "$BIN"
