#!/usr/bin/env bash
# scripts/test.sh runs agentid's whole test suite, installing first whatever
# the real-component tests need, so that it passes on a fresh machine with
# only Go and Node.js on it. It is the README's test command and what CI runs.
#
#   scripts/test.sh                  CI defaults to true: a test whose real
#                                    component is missing fails, never skips
#   CI=false scripts/test.sh         lets such tests skip instead
#   AGENTID_SKIP_FUZZ=1 scripts/...  leaves out the fuzz smoke run
#   AGENTID_FUZZTIME=20000x          executions per fuzz target (or a time
#                                    such as 10s, then capped by the budget)
#   AGENTID_FUZZ_BUDGET=600          seconds for all time-based targets together
#
# Anything expensive to make is cached under ~/.cache/agentid (or
# $AGENTID_CACHE), once per machine.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="$(dirname "$ROOT")/shared"
CACHE="${AGENTID_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agentid}"
export CI="${CI:-true}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/agentid-test.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

START=$SECONDS
STEPS=()
FAILED=()

log() { printf '\n==> %s\n' "$*"; }
die() {
	printf '\ntest.sh: FATAL: %s\n' "$*" >&2
	exit 1
}

# run_step NAME COMMAND... runs a check, records its outcome and time, and
# goes on with the next check even when this one fails, so that one run
# reports every failure. errexit is switched on again inside the subshell
# because bash ignores it in functions called from a condition.
run_step() {
	local name=$1 rc=0 began=$SECONDS
	shift
	log "$name"
	set +e
	(
		set -e
		"$@"
	)
	rc=$?
	set -e
	local took=$((SECONDS - began))
	if ((rc == 0)); then
		STEPS+=("$(printf '%-12s ok     %4ds' "$name" "$took")")
	else
		STEPS+=("$(printf '%-12s FAILED %4ds (exit %d)' "$name" "$took" "$rc")")
		FAILED+=("$name")
		printf '\ntest.sh: step %s FAILED (exit %d)\n' "$name" "$rc" >&2
	fi
}

# ---- setup: each ensure_* makes one component available or stops the run ----

print_versions() {
	log "tools"
	command -v go >/dev/null || die "go is not on PATH"
	command -v node >/dev/null || die "node is not on PATH (Node.js 20 or newer is needed for the npm MCP servers)"
	command -v npm >/dev/null || die "npm is not on PATH"
	go version
	printf 'node %s\nnpm %s\n' "$(node --version)" "$(npm --version 2>/dev/null)"
	printf 'bash %s\n' "$BASH_VERSION"
	printf 'CI=%s  cache=%s\n' "$CI" "$CACHE"
	local major
	major="$(node -p 'process.versions.node.split(".")[0]')"
	((major >= 20)) || die "node $(node --version) is too old: the pinned MCP servers need 20 or newer"
}

check_shared() {
	log "shared directory"
	[[ -d "$SHARED/spec/aip/conformance" ]] ||
		die "$SHARED/spec/aip/conformance not found: the specs and conformance vectors must sit in ../shared beside the repository"
	echo "$SHARED"
}

# ensure_npm DIR installs the pinned npm packages of DIR from its lockfile.
# npm ci wipes node_modules on every run, so it is skipped when the stamp
# written after the last successful install matches the lockfile.
ensure_npm() {
	local dir="$ROOT/$1"
	log "npm packages in $1"
	local stamp="$dir/node_modules/.agentid-lock-hash"
	local want
	want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
	if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
		echo "node_modules up to date with package-lock.json"
		return
	fi
	mkdir -p "$CACHE/npm"
	local began=$SECONDS
	(cd "$dir" && npm ci --no-audit --no-fund --cache "$CACHE/npm") ||
		die "npm ci in $dir failed"
	printf '%s\n' "$want" >"$stamp"
	echo "npm ci took $((SECONDS - began))s"
}

# Later components get their own ensure_* here, in the same shape:
# ensure_redis (Debian package, started on loopback), ensure_postgres (same),
# ensure_envtest_assets (etcd and kube-apiserver built from the Go module proxy
# into $CACHE, exported as KUBEBUILDER_ASSETS).

# ensure_spire builds spire-server and spire-agent once per machine into
# $CACHE (scripts/ensure-spire.sh; ~15 min cold on 2 cores) and exports
# SPIRE_BIN_DIR for agentcard's integration test.
ensure_spire() {
	log "SPIRE"
	local began=$SECONDS
	SPIRE_BIN_DIR="$(AGENTID_CACHE="$CACHE" "$ROOT/scripts/ensure-spire.sh")" ||
		die "building SPIRE with scripts/ensure-spire.sh failed"
	export SPIRE_BIN_DIR
	echo "SPIRE_BIN_DIR=$SPIRE_BIN_DIR ($((SECONDS - began))s)"
}

# ---- checks ----

go_vet() {
	cd "$ROOT"
	go vet ./...
}

GO_TEST_LOG="$WORK/go-test.log"

go_test() {
	cd "$ROOT"
	go test -count=1 -timeout 30m ./... 2>&1 | tee "$GO_TEST_LOG"
}

# conformance runs the AIP vectors against this build. The binary is built
# once rather than with go run, so that the --help probe and the run share it.
conformance() {
	cd "$ROOT"
	local bin="$WORK/agentid"
	if ! go build -o "$bin" ./cmd/agentid; then
		printf '\n!!! cmd/agentid does not build: the conformance suite cannot run !!!\n' >&2
		return 1
	fi
	if ! "$bin" conformance --help >/dev/null 2>&1; then
		printf '\n!!! "agentid conformance --help" failed: the conformance command is missing or broken !!!\n' >&2
		return 1
	fi
	"$bin" conformance --suite "$SHARED/spec/aip/conformance" --level identity
}

# fuzz_smoke runs every Fuzz target of the module briefly. Targets are found
# with go test -list; the time per target shrinks when there are so many
# that the budget would be exceeded.
fuzz_smoke() {
	cd "$ROOT"
	local list="$WORK/fuzz-list.txt"
	# A package that does not build is the test step's failure to report;
	# the targets of the others still run.
	go test -list '^Fuzz' ./... >"$list" || echo "some packages did not build; fuzzing the others" >&2
	local -a targets=()
	local -a pending=()
	local line
	while IFS= read -r line; do
		case "$line" in
		Fuzz*) pending+=("$line") ;;
		ok*)
			local pkg
			pkg="$(awk '{print $2}' <<<"$line")"
			local name
			for name in "${pending[@]}"; do
				targets+=("$pkg $name")
			done
			pending=()
			;;
		esac
	done <"$list"
	if ((${#targets[@]} == 0)); then
		echo "no fuzz targets"
		return
	fi
	# An execution count, not a duration: with a duration, Go 1.26's fuzz
	# coordinator can report a spurious "context deadline exceeded" failure
	# when -fuzztime expires on a loaded machine (golang/go#75804, fixed in
	# Go 1.27). A count has no deadline to race.
	local fuzztime="${AGENTID_FUZZTIME:-20000x}"
	local budget="${AGENTID_FUZZ_BUDGET:-600}"
	local secs="${fuzztime%s}"
	if [[ "$secs" =~ ^[0-9]+$ ]] && ((secs * ${#targets[@]} > budget)); then
		secs=$((budget / ${#targets[@]}))
		((secs >= 1)) || secs=1
		fuzztime="${secs}s"
	fi
	echo "${#targets[@]} fuzz targets, ${fuzztime} each"
	local target pkg name failed=0
	for target in "${targets[@]}"; do
		read -r pkg name <<<"$target"
		echo "--- $name ($pkg)"
		if ! go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" -timeout=10m "$pkg"; then
			echo "fuzz target $name in $pkg FAILED" >&2
			failed=1
		fi
	done
	return "$failed"
}

summary() {
	log "summary"
	local s
	for s in "${STEPS[@]}"; do
		printf '  %s\n' "$s"
	done
	local passed=0 failed=0 notests=0
	if [[ -f "$GO_TEST_LOG" ]]; then
		passed="$(grep -c '^ok[[:space:]]' "$GO_TEST_LOG" || true)"
		failed="$(grep -c '^FAIL[[:space:]]' "$GO_TEST_LOG" || true)"
		notests="$(grep -c '^?[[:space:]].*\[no test files\]' "$GO_TEST_LOG" || true)"
	fi
	printf '  total %ds; %d packages without tests\n' "$((SECONDS - START))" "$notests"
	if ((${#FAILED[@]} > 0)); then
		printf '\ntest.sh: FAILED: %s\n' "${FAILED[*]}"
	else
		printf '\ntest.sh: all checks passed\n'
	fi
	# The last line, in the plain form that test-result readers understand,
	# counts Go packages.
	printf 'packages: %d passed, %d failed\n' "$passed" "$failed"
}

main() {
	cd "$ROOT"
	print_versions
	check_shared
	ensure_npm test/mcp-servers # real MCP servers for the proxy's end-to-end tests
	ensure_npm test/interop     # npm jose for the identity and agentcard interop tests
	ensure_spire

	run_step vet go_vet
	run_step test go_test
	run_step conformance conformance
	if [[ "${AGENTID_SKIP_FUZZ:-0}" == 1 ]]; then
		STEPS+=("$(printf '%-12s skipped (AGENTID_SKIP_FUZZ=1)' fuzz)")
	else
		run_step fuzz fuzz_smoke
	fi

	summary
	((${#FAILED[@]} == 0))
}

main "$@"
