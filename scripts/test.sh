#!/usr/bin/env bash
# scripts/test.sh runs agentid's whole test suite, installing first whatever
# the real-component tests need, so that it passes on a fresh machine with
# only Go (with cgo, for -race) and Node.js on it. It is the README's test
# command and what CI runs. Every step is deterministic: nothing here
# explores for new inputs (fuzzing is scripts/fuzz.sh); plain go test replays
# each fuzz target's seeds and its committed corpus in testdata/fuzz.
#
#   scripts/test.sh                  CI defaults to true: a test whose real
#                                    component is missing fails, never skips
#   CI=false scripts/test.sh         lets such tests skip instead
#   AGENTID_SKIP_RACE=1 scripts/...  leaves out the go test -race run
#
# Steps, each timed; a failing one does not stop the others:
#   gofmt        gofmt -l . lists no file
#   tidy         go mod tidy -diff shows no change
#   generated    the files of scripts/generate.sh (deepcopy, CRD, RBAC, the
#                Helm chart's copies of both) are the committed ones
#   vet          go vet ./...
#   test         go test ./... (all packages, -count=1)
#   race         the same under the race detector
#   conformance  the AIP vectors (--level server: all of them) against this build
# The summary counts tests passed, failed and skipped in each run, lists
# every skipped test with its package and reason, and ends with the lines
#   tests: N passed, M failed, K skipped; under -race: ...
#   packages: N passed, M failed
# (a package fails when it fails in either run).
#
# Anything expensive to make is cached under ~/.cache/agentid (or
# $AGENTID_CACHE), once per machine.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="$(dirname "$ROOT")/shared"
CACHE="${AGENTID_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agentid}"
export CI="${CI:-true}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/agentid-test.XXXXXX")"
# The test processes build agentid into agentid-testbin-<pid>-* (see
# internal/testenv/binary.go); each build sweeps away the directories of
# processes that have ended, which leaves the last run's: swept here too.
sweep_testbins() {
	local d pid
	for d in "${TMPDIR:-/tmp}"/agentid-testbin-*; do
		[ -d "$d" ] || continue
		pid="${d##*/agentid-testbin-}"
		pid="${pid%%-*}"
		kill -0 "$pid" 2>/dev/null || rm -rf "$d"
	done
}
trap 'rm -rf "$WORK"; sweep_testbins' EXIT

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
	# Installed below when absent (ensure_redis, ensure_postgres).
	if command -v redis-server >/dev/null; then
		redis-server --version
	else
		echo "redis-server: not installed yet"
	fi
	local pgdir
	if pgdir="$(pg_bindir)"; then
		"$pgdir/postgres" --version
	else
		echo "postgres: not installed yet"
	fi
	printf 'CI=%s  cache=%s\n' "$CI" "$CACHE"
	local major
	major="$(node -p 'process.versions.node.split(".")[0]')"
	((major >= 20)) || die "node $(node --version) is too old: the pinned MCP servers need 20 or newer"
	if [[ "${AGENTID_SKIP_RACE:-0}" != 1 && "$(go env CGO_ENABLED)" != 1 ]]; then
		die "go test -race needs cgo: install a C compiler (gcc) and set CGO_ENABLED=1, or set AGENTID_SKIP_RACE=1"
	fi
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

# apt_install PACKAGE... installs Debian packages, through sudo when not
# root. The packages' own services are not started (a temporary policy-rc.d
# refuses them, as in container images): the tests start private servers on
# free loopback ports (internal/testenv) and never use a system one.
apt_install() {
	command -v apt-get >/dev/null || die "$* must be installed, and apt-get is not available: install it with the system's package manager"
	local -a sudo=()
	if ((EUID != 0)); then
		command -v sudo >/dev/null || die "installing $*: not root, and sudo is not available"
		sudo=(sudo -n)
	fi
	local policy=/usr/sbin/policy-rc.d added=0
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null &&
			"${sudo[@]}" chmod 755 "$policy" && added=1
	fi
	local rc=0
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" || rc=$?
	((added == 0)) || "${sudo[@]}" rm -f "$policy"
	((rc == 0)) || die "apt-get install $* failed (exit $rc)"
}

# pg_bindir prints the directory holding initdb and postgres, as
# internal/testenv finds it: PATH first, else the newest Debian
# /usr/lib/postgresql/*/bin, which Debian does not put on PATH.
pg_bindir() {
	local p d
	if p="$(command -v postgres)"; then
		d="$(dirname "$(readlink -f "$p")")"
		[[ -x "$d/initdb" ]] && { echo "$d"; return 0; }
	fi
	while read -r d; do
		[[ -x "$d/postgres" && -x "$d/initdb" ]] && { echo "$d"; return 0; }
	done < <(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4,4nr)
	return 1
}

# ensure_redis installs redis-server (Debian package redis-server) when it
# is not on PATH; store/redis's tests start their own instances of it.
ensure_redis() {
	log "Redis"
	if ! command -v redis-server >/dev/null; then
		echo "redis-server not found: installing the Debian package redis-server"
		apt_install redis-server
		command -v redis-server >/dev/null || die "redis-server is still not on PATH after installing redis-server"
	fi
	redis-server --version
}

# ensure_postgres installs PostgreSQL (Debian package postgresql) when
# initdb and postgres cannot be found; store/postgres's tests run their own
# clusters, as the postgres user when the tests run as root.
ensure_postgres() {
	log "PostgreSQL"
	local dir
	if ! dir="$(pg_bindir)"; then
		echo "initdb and postgres not found: installing the Debian package postgresql"
		apt_install postgresql
		dir="$(pg_bindir)" || die "initdb and postgres are still not found after installing postgresql"
	fi
	if ((EUID == 0)) && ! id postgres >/dev/null 2>&1; then
		die "the tests run as root, and PostgreSQL refuses root: the postgres user must exist (the postgresql package creates it)"
	fi
	"$dir/postgres" --version
	echo "binaries in $dir"
}

# ensure_spire builds spire-server and spire-agent once per machine into
# $CACHE (scripts/ensure-spire.sh; ~15 min cold on 2 cores) and writes their
# directory, SPIRE_BIN_DIR for agentcard's integration test, to file $1.
ensure_spire() {
	AGENTID_CACHE="$CACHE" "$ROOT/scripts/ensure-spire.sh" >"$1"
}

# ensure_envtest builds etcd and kube-apiserver once per machine into $CACHE
# (scripts/ensure-envtest.sh; ~15 min cold on 2 cores) and writes their
# directory, KUBEBUILDER_ASSETS for the operator's envtest suites, to file $1.
ensure_envtest() {
	AGENTID_CACHE="$CACHE" "$ROOT/scripts/ensure-envtest.sh" >"$1"
}

# ensure_helm builds the helm CLI once per machine into $CACHE
# (scripts/ensure-helm.sh; 18 min measured cold beside the other two
# builds) and writes its directory, HELM_BIN_DIR for the chart's render
# test, to file $1.
ensure_helm() {
	AGENTID_CACHE="$CACHE" "$ROOT/scripts/ensure-helm.sh" >"$1"
}

# ensure_builds runs ensure_spire, ensure_envtest and ensure_helm side by
# side: on a cold machine each is a long go build that leaves a core idle
# much of the time (downloads, links), so together they take little more
# than the longest. Each one's progress is prefixed with its name. A failure
# of any stops the run, after all have ended. Warm, each only checks its
# binaries.
ensure_builds() {
	log "SPIRE, envtest assets (etcd, kube-apiserver) and helm"
	local began=$SECONDS
	local spire_dir="$WORK/spire.dir" envtest_dir="$WORK/envtest.dir" helm_dir="$WORK/helm.dir"
	ensure_spire "$spire_dir" 2> >(sed -u 's/^/[spire] /' >&2) &
	local spire_pid=$!
	ensure_envtest "$envtest_dir" 2> >(sed -u 's/^/[envtest] /' >&2) &
	local envtest_pid=$!
	ensure_helm "$helm_dir" 2> >(sed -u 's/^/[helm] /' >&2) &
	local helm_pid=$!
	local spire_rc=0 envtest_rc=0 helm_rc=0
	wait "$spire_pid" || spire_rc=$?
	wait "$envtest_pid" || envtest_rc=$?
	wait "$helm_pid" || helm_rc=$?
	((spire_rc == 0)) || printf '\ntest.sh: building SPIRE with scripts/ensure-spire.sh FAILED (exit %d)\n' "$spire_rc" >&2
	((envtest_rc == 0)) || printf '\ntest.sh: building etcd and kube-apiserver with scripts/ensure-envtest.sh FAILED (exit %d)\n' "$envtest_rc" >&2
	((helm_rc == 0)) || printf '\ntest.sh: building helm with scripts/ensure-helm.sh FAILED (exit %d)\n' "$helm_rc" >&2
	((spire_rc == 0 && envtest_rc == 0 && helm_rc == 0)) || die "a component build failed (see above)"
	SPIRE_BIN_DIR="$(cat "$spire_dir")"
	KUBEBUILDER_ASSETS="$(cat "$envtest_dir")"
	HELM_BIN_DIR="$(cat "$helm_dir")"
	[[ -n "$SPIRE_BIN_DIR" && -n "$KUBEBUILDER_ASSETS" && -n "$HELM_BIN_DIR" ]] || die "a component build printed no directory"
	export SPIRE_BIN_DIR KUBEBUILDER_ASSETS HELM_BIN_DIR
	echo "SPIRE_BIN_DIR=$SPIRE_BIN_DIR"
	echo "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
	echo "HELM_BIN_DIR=$HELM_BIN_DIR"
	echo "($((SECONDS - began))s)"
}

# ---- checks ----

# gofmt fails when a Go file is not gofmt-formatted.
gofmt_check() {
	cd "$ROOT"
	local out
	out="$(gofmt -l .)"
	if [[ -n "$out" ]]; then
		printf '%s\n' "$out"
		printf '\n!!! these files need gofmt -w !!!\n' >&2
		return 1
	fi
	echo "all Go files are gofmt-formatted"
}

# tidy fails when go.mod or go.sum is not what go mod tidy would write.
tidy_check() {
	cd "$ROOT"
	if ! go mod tidy -diff; then
		printf '\n!!! go.mod/go.sum are not tidy: run go mod tidy !!!\n' >&2
		return 1
	fi
	echo "go.mod and go.sum are tidy"
}

# generated fails when a file that scripts/generate.sh writes (deepcopy,
# CRD, RBAC, and their copies in the Helm chart) differs from the committed
# one.
generated_check() {
	cd "$ROOT"
	local out="$WORK/generated"
	bash scripts/generate.sh "$out"
	local rc=0 f
	for f in api/v1alpha1/zz_generated.deepcopy.go deploy/crd deploy/rbac \
		deploy/helm/agentid-operator/crds deploy/helm/agentid-operator/files; do
		# kustomization.yaml and role_binding.yaml beside the output are
		# written by hand.
		diff -ru -x kustomization.yaml -x role_binding.yaml "$f" "$out/$f" || rc=1
	done
	if ((rc != 0)); then
		printf '\n!!! generated files are out of date: run scripts/generate.sh and commit !!!\n' >&2
		return 1
	fi
	echo "generated files are up to date"
}

go_vet() {
	cd "$ROOT"
	go vet ./...
	echo "go vet found nothing"
}

# run_tests NAME [GO TEST FLAGS...] runs every package's tests once with
# -json; tools/testreport prints what plain go test would (failures in
# full, a line per package) and writes $WORK/NAME.summary (counts, skipped
# tests with their reasons) and $WORK/NAME.packages (ok|FAIL|none PACKAGE).
run_tests() {
	local name=$1
	shift
	cd "$ROOT"
	local report="$WORK/testreport"
	if [[ ! -x "$report" ]]; then
		go build -o "$report" ./tools/testreport
	fi
	go test -count=1 -timeout 30m -json "$@" ./... 2>&1 |
		"$report" -summary "$WORK/$name.summary" -packages "$WORK/$name.packages"
}

go_test() { run_tests test; }

# go_race runs the tests under the race detector. Allocation-count tests
# skip there (raceEnabled); the summary lists them.
go_race() { run_tests race -race; }

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
	"$bin" conformance --suite "$SHARED/spec/aip/conformance" --level server
}

# tests_line NAME prints the "N passed, M failed, K skipped" counts of the
# NAME run, or "did not run".
tests_line() {
	local f="$WORK/$1.summary"
	if [[ -f "$f" ]]; then
		sed -n 's/^tests: //p' "$f"
	elif [[ $1 == race && "${AGENTID_SKIP_RACE:-0}" == 1 ]]; then
		echo "skipped (AGENTID_SKIP_RACE=1)"
	else
		echo "did not run"
	fi
}

summary() {
	log "summary"
	local s
	for s in "${STEPS[@]}"; do
		printf '  %s\n' "$s"
	done
	printf '  total %ds\n' "$((SECONDS - START))"

	# Tests (subtests and fuzz seed inputs included) per run, and every
	# skipped one: under CI=true only the legitimate skips remain, such as
	# the allocation-count tests under -race.
	local run label
	printf '\n'
	for run in test race; do
		label="go test"
		[[ $run == race ]] && label="go test -race"
		printf '  %-14s %s\n' "$label:" "$(tests_line "$run")"
	done
	for run in test race; do
		[[ -f "$WORK/$run.summary" ]] || continue
		local skipped
		skipped="$(sed -n 's/^skipped: //p' "$WORK/$run.summary")"
		[[ -n "$skipped" ]] || continue
		label="go test"
		[[ $run == race ]] && label="go test -race"
		printf '  skipped in %s:\n' "$label"
		printf '%s\n' "$skipped" | sed 's/^/    /'
	done

	# A package passes when it passed in every run it took part in and fails
	# when it failed in any.
	local -a pkgfiles=()
	for run in test race; do
		[[ -f "$WORK/$run.packages" ]] && pkgfiles+=("$WORK/$run.packages")
	done
	local passed=0 failed=0 notests=0
	if ((${#pkgfiles[@]} > 0)); then
		read -r passed failed notests < <(awk '
			{ if ($1 == "FAIL" || st[$2] == "FAIL") st[$2] = "FAIL"; else if ($1 == "ok" || st[$2] == "ok") st[$2] = "ok"; else st[$2] = "none" }
			END { for (p in st) n[st[p]]++; printf "%d %d %d\n", n["ok"], n["FAIL"], n["none"] }' "${pkgfiles[@]}")
	fi
	printf '  %d packages without tests\n' "$notests"

	if ((${#FAILED[@]} > 0)); then
		printf '\ntest.sh: FAILED: %s\n' "${FAILED[*]}"
	else
		printf '\ntest.sh: all checks passed\n'
	fi
	# The last lines, in the plain form that test-result readers understand:
	# tests, then Go packages.
	printf 'tests: %s; under -race: %s\n' "$(tests_line test)" "$(tests_line race)"
	printf 'packages: %d passed, %d failed\n' "$passed" "$failed"
}

main() {
	cd "$ROOT"
	print_versions
	check_shared
	ensure_npm test/mcp-servers # real MCP servers for the proxy's end-to-end tests
	ensure_npm test/interop     # npm jose for the identity and agentcard interop tests
	ensure_npm test/sdk-client  # the official MCP TypeScript SDK client (AIP codes as it sees them)
	ensure_builds   # SPIRE, etcd, kube-apiserver and helm, built in parallel when missing
	ensure_redis    # private servers for store/redis's tests
	ensure_postgres # private clusters for store/postgres's tests

	run_step gofmt gofmt_check
	run_step tidy tidy_check
	run_step generated generated_check
	run_step vet go_vet
	run_step test go_test
	if [[ "${AGENTID_SKIP_RACE:-0}" == 1 ]]; then
		STEPS+=("$(printf '%-12s skipped (AGENTID_SKIP_RACE=1)' race)")
	else
		run_step race go_race
	fi
	run_step conformance conformance

	summary
	((${#FAILED[@]} == 0))
}

main "$@"
