#!/usr/bin/env bash
# ensure-envtest.sh builds etcd and kube-apiserver from the Go module proxy
# into a per-machine cache and prints the directory holding them, which is
# what controller-runtime's envtest wants in KUBEBUILDER_ASSETS.
#
# Prebuilt envtest assets cannot be downloaded here, so each binary is built
# from a scratch module:
#   etcd            requires go.etcd.io/etcd/server/v3 with its sibling
#                   modules (api, client/pkg, client/v3, pkg) replaced by the
#                   same version (~1 min cold);
#   kube-apiserver  requires k8s.io/kubernetes with every k8s.io/* staging
#                   module its go.mod lists replaced by the matching v0.x
#                   release (~13 min cold on 2 cores).
# The script is idempotent: when both binaries are present and report the
# pinned versions, it only prints the directory. Progress goes to stderr;
# the directory is the only thing on stdout, so callers can do
#   KUBEBUILDER_ASSETS="$(scripts/ensure-envtest.sh)"
set -euo pipefail

ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.37.2}"
# The staging modules (k8s.io/api, k8s.io/apiserver, …) are published as
# v0.<minor>.<patch> for Kubernetes v1.<minor>.<patch>.
STAGING_VERSION="v0.${KUBERNETES_VERSION#v1.}"
CACHE_ROOT="${AGENTID_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agentid}"
DEST="$CACHE_ROOT/envtest-kube-$KUBERNETES_VERSION-etcd-$ETCD_VERSION"
BIN="$DEST/bin"

log() { printf 'ensure-envtest: %s\n' "$*" >&2; }
# shellcheck source=cached-build.sh
source "$(dirname "${BASH_SOURCE[0]}")/cached-build.sh"

have_etcd() {
	[[ -x "$BIN/etcd" ]] || return 1
	local v
	v="$("$BIN/etcd" --version 2>&1)" || return 1
	[[ "$v" == *"etcd Version: ${ETCD_VERSION#v}"* ]]
}

have_apiserver() {
	[[ -x "$BIN/kube-apiserver" ]] || return 1
	local v
	v="$("$BIN/kube-apiserver" --version 2>&1)" || return 1
	[[ "$v" == "Kubernetes $KUBERNETES_VERSION" ]]
}

built() { have_etcd && have_apiserver; }
cached_or_lock built

work="$(mktemp -d "${TMPDIR:-/tmp}/envtest-build.XXXXXX")"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$BIN"

# gobuild DIR OUT PACKAGE [LDFLAGS] builds PACKAGE of the scratch module in
# DIR into OUT. GOWORK=off isolates us from any enclosing go.work;
# -mod=mod lets go resolve and record the module graph of the scratch
# module; GOTOOLCHAIN=local keeps the machine's Go.
gobuild() {
	local dir=$1 out=$2 pkg=$3 ldflags=${4:-}
	(
		cd "$dir"
		GOWORK=off GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 \
			go build -trimpath -ldflags="-s -w $ldflags" -o "$out" "$pkg"
	)
}

build_etcd() {
	local dir="$work/etcd" start=$SECONDS
	log "building etcd $ETCD_VERSION (~1 minute cold)"
	mkdir -p "$dir"
	cat >"$dir/go.mod" <<EOF
module agentid.local/envtest/etcd

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION

replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 $ETCD_VERSION
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 $ETCD_VERSION
)
EOF
	gobuild "$dir" "$work/etcd.bin" go.etcd.io/etcd/server/v3
	mv -f "$work/etcd.bin" "$BIN/etcd"
	have_etcd || { log "the built etcd does not report version $ETCD_VERSION: $("$BIN/etcd" --version 2>&1 | head -1)"; exit 1; }
	log "etcd built in $((SECONDS - start))s"
}

build_apiserver() {
	local dir="$work/kube" start=$SECONDS
	log "building kube-apiserver $KUBERNETES_VERSION (~13 minutes cold on 2 cores)"
	mkdir -p "$dir"
	# The staging modules are the k8s.io/* modules that k8s.io/kubernetes
	# requires at v0.0.0 (its own go.mod replaces them by ./staging paths,
	# which do not apply to a dependency).
	local gomod
	gomod="$(GOWORK=off GOFLAGS= go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
		sed -n 's/^[[:space:]]*"GoMod":[[:space:]]*"\(.*\)",\{0,1\}$/\1/p')"
	if [[ -z "$gomod" || ! -f "$gomod" ]]; then
		log "could not locate the go.mod of k8s.io/kubernetes@$KUBERNETES_VERSION"
		exit 1
	fi
	local -a staging
	mapfile -t staging < <(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" { print $1 } $1 == "require" && $2 ~ /^k8s\.io\// && $3 == "v0.0.0" { print $2 }' "$gomod" | sort -u)
	if ((${#staging[@]} < 10)); then
		log "found only ${#staging[@]} staging modules in $gomod: its format changed?"
		exit 1
	fi
	{
		printf 'module agentid.local/envtest/kube\n\ngo 1.24\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$KUBERNETES_VERSION"
		local m
		for m in "${staging[@]}"; do
			printf '\t%s => %s %s\n' "$m" "$m" "$STAGING_VERSION"
		done
		printf ')\n'
	} >"$dir/go.mod"
	log "${#staging[@]} staging modules replaced by $STAGING_VERSION"
	# Without these the binary calls itself v0.0.0-master, which envtest and
	# clients read as a very old server.
	local minor=${KUBERNETES_VERSION#v1.}
	minor=${minor%%.*}
	local v ldflags=""
	for v in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $v.gitVersion=$KUBERNETES_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor"
		ldflags+=" -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z"
	done
	gobuild "$dir" "$work/kube-apiserver.bin" k8s.io/kubernetes/cmd/kube-apiserver "$ldflags"
	mv -f "$work/kube-apiserver.bin" "$BIN/kube-apiserver"
	have_apiserver || { log "the built kube-apiserver does not report $KUBERNETES_VERSION: $("$BIN/kube-apiserver" --version 2>&1 | head -1)"; exit 1; }
	log "kube-apiserver built in $((SECONDS - start))s"
}

have_etcd || build_etcd
have_apiserver || build_apiserver
printf '%s\n' "$BIN"
