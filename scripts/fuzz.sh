#!/usr/bin/env bash
# scripts/fuzz.sh explores agentid's fuzz targets for new failing inputs.
#
#   scripts/fuzz.sh DURATION [REGEX]
#
#   DURATION  how long to fuzz each target, as go test -fuzztime takes it:
#             30s, 2m, or an execution count such as 200000x
#   REGEX     fuzz only the targets whose IMPORTPATH.Name matches this
#             extended regular expression, e.g. 'FuzzParse' or
#             'jsonrpc\.FuzzDecode$'; default $AGENTID_FUZZ_TARGETS, else all
#
#   AGENTID_FUZZ_PARALLEL=N     fuzzing workers per target (go test -parallel);
#                               default 1, so that a run does not starve a
#                               machine shared with other work
#   AGENTID_FUZZ_KEEP_CACHE=1   keep Go's fuzz cache (the inputs it found
#                               interesting, under $(go env GOCACHE)/fuzz);
#                               by default the run ends with go clean -fuzzcache
#                               so that ~/.cache does not grow
#
# It is not part of scripts/test.sh or CI. Those are deterministic: plain
# go test runs every fuzz target on its seeds (f.Add) and on the corpus
# committed under testdata/fuzz/<Target>/ beside the package, while an
# exploration can find a new input on any run, which must not decide whether
# unrelated work lands.
#
# Targets are found with go test -list '^Fuzz' ./... and fuzzed one after the
# other. When a target fails, Go writes the failing input to
# testdata/fuzz/<Target>/<hash> in the package's directory; the summary at
# the end lists each one with the command that reproduces it. Fix the bug,
# then commit that file: from then on it is a regression test that every
# go test replays.
#
# With a duration (not a count), Go 1.26's fuzz coordinator can fail a target
# with a spurious "context deadline exceeded" when the time runs out on a
# loaded machine (golang/go#75804, fixed in Go 1.27). A failure that says so
# and wrote no new input is reported as a warning, not a finding.
#
# Exit status: 0 when no target failed (warnings allowed), 1 when one did,
# 2 on a usage error.
set -euo pipefail

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
	exit 2
}

(($# >= 1 && $# <= 2)) || usage
case "$1" in -h | --help) usage ;; esac
FUZZTIME=$1
[[ "$FUZZTIME" =~ ^([0-9]+x|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$ ]] ||
	{ echo "fuzz.sh: DURATION must be a Go duration (30s, 2m) or a count (1000x), not $FUZZTIME" >&2 && exit 2; }
FILTER="${2:-${AGENTID_FUZZ_TARGETS:-}}"
PARALLEL="${AGENTID_FUZZ_PARALLEL:-1}"
[[ "$PARALLEL" =~ ^[1-9][0-9]*$ ]] ||
	{ echo "fuzz.sh: AGENTID_FUZZ_PARALLEL must be a positive integer, not $PARALLEL" >&2 && exit 2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/agentid-fuzz.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# list_targets prints "IMPORTPATH NAME" for every fuzz target. go test -list
# prints a package's targets, then "ok  IMPORTPATH ...".
list_targets() {
	local line pkg name
	local -a pending=()
	if ! go test -list '^Fuzz' ./... >"$WORK/list" 2>&1; then
		echo "fuzz.sh: some packages do not build (go test -list failed); fuzzing the others:" >&2
		grep -v '^\(Fuzz\|ok\|?\)' "$WORK/list" >&2 || true
	fi
	while IFS= read -r line; do
		case "$line" in
		Fuzz*) pending+=("$line") ;;
		ok*)
			pkg="$(awk '{print $2}' <<<"$line")"
			for name in "${pending[@]}"; do
				printf '%s %s\n' "$pkg" "$name"
			done
			pending=()
			;;
		esac
	done <"$WORK/list"
}

mapfile -t TARGETS < <(list_targets | while read -r pkg name; do
	if [[ -z "$FILTER" ]] || grep -Eq -- "$FILTER" <<<"$pkg.$name"; then
		printf '%s %s\n' "$pkg" "$name"
	fi
done)
if ((${#TARGETS[@]} == 0)); then
	echo "fuzz.sh: no fuzz target matches ${FILTER:-anything}" >&2
	exit 1
fi

printf 'fuzz.sh: %d targets, %s each, -parallel=%s\n' "${#TARGETS[@]}" "$FUZZTIME" "$PARALLEL"

# corpus_files DIR NAME lists the files in NAME's committed corpus directory.
corpus_files() {
	if [[ -d "$1/testdata/fuzz/$2" ]]; then
		find "$1/testdata/fuzz/$2" -type f | sort
	fi
}

FINDINGS=()
WARNINGS=()
FAILED_TARGETS=0
ERRORS=()
START=$SECONDS
i=0
for target in "${TARGETS[@]}"; do
	read -r pkg name <<<"$target"
	i=$((i + 1))
	dir="$(go list -f '{{.Dir}}' "$pkg")"
	rel="${dir#"$ROOT"/}"
	[[ "$dir" == "$ROOT" ]] && rel=.
	log="$WORK/$i.log"
	printf '\n==> [%d/%d] %s (%s)\n' "$i" "${#TARGETS[@]}" "$name" "$pkg"
	corpus_files "$dir" "$name" >"$WORK/before"
	began=$SECONDS
	rc=0
	# Targets whose code keeps caches across calls (dlp's clean-key cache,
	# pooled scanners) cover different code on a second run of one input,
	# so the minimizer cannot confirm what it shrinks and spends its whole
	# budget (60 s by default) on each new interesting input, with no
	# exploration meanwhile. 5 s keeps the corpus small enough.
	go test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" -fuzzminimizetime=5s -parallel="$PARALLEL" "$pkg" 2>&1 | tee "$log" || rc=$?
	took=$((SECONDS - began))
	((rc == 0)) && continue

	corpus_files "$dir" "$name" >"$WORK/after"
	mapfile -t written < <(comm -13 "$WORK/before" "$WORK/after")
	if ((${#written[@]} > 0)); then
		FAILED_TARGETS=$((FAILED_TARGETS + 1))
		for f in "${written[@]}"; do
			f="${f#"$ROOT"/}"
			FINDINGS+=("$name ($pkg): $f
      reproduce: go test -run='^$name/$(basename "$f")\$' ./$rel")
		done
	elif grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written to' "$log"; then
		WARNINGS+=("$name ($pkg): failed with \"context deadline exceeded\" after ${took}s and wrote no input: Go's spurious fuzztime failure (golang/go#75804), not a finding")
	else
		FAILED_TARGETS=$((FAILED_TARGETS + 1))
		ERRORS+=("$name ($pkg): failed (exit $rc) without writing a new input after ${took}s; see its output above (a failing seed or corpus entry shows in plain go test)")
	fi
done

if [[ "${AGENTID_FUZZ_KEEP_CACHE:-0}" != 1 ]]; then
	go clean -fuzzcache
	clean="fuzz cache cleaned (go clean -fuzzcache)"
else
	clean="fuzz cache kept in $(go env GOCACHE)/fuzz (AGENTID_FUZZ_KEEP_CACHE=1)"
fi

printf '\n==> fuzz.sh summary: %d targets, %s each, %ds; %s\n' "${#TARGETS[@]}" "$FUZZTIME" "$((SECONDS - START))" "$clean"
if ((${#FINDINGS[@]} > 0)); then
	printf '\nFailing inputs written (fix the bug, then commit the file as a corpus entry):\n'
	printf '  %s\n' "${FINDINGS[@]}"
fi
if ((${#ERRORS[@]} > 0)); then
	printf '\nFailed without a new input:\n'
	printf '  %s\n' "${ERRORS[@]}"
fi
if ((${#WARNINGS[@]} > 0)); then
	printf '\nWarnings:\n'
	printf '  %s\n' "${WARNINGS[@]}"
fi
printf '\nfuzz targets: %d passed, %d failed, %d with a warning\n' \
	"$((${#TARGETS[@]} - FAILED_TARGETS - ${#WARNINGS[@]}))" "$FAILED_TARGETS" "${#WARNINGS[@]}"
((FAILED_TARGETS == 0))
