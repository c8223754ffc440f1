# scripts/cached-build.sh is sourced by the ensure-*.sh scripts, which build a
# component from the Go module proxy into $DEST (binaries in $BIN) once per
# machine. It is not run on its own.

# cached_or_lock CHECK... prints $BIN and exits when the command CHECK
# passes (the component is built). Otherwise it takes the cache directory's
# build lock, so that a second caller waits for the first build instead of
# racing it, and checks again; it returns when the caller must build.
cached_or_lock() {
	if "$@"; then
		printf '%s\n' "$BIN"
		exit 0
	fi
	command -v go >/dev/null || { log "go is not on PATH"; exit 1; }
	mkdir -p "$DEST"
	exec 9>"$DEST/.lock"
	if command -v flock >/dev/null; then
		flock 9
	fi
	if "$@"; then
		printf '%s\n' "$BIN"
		exit 0
	fi
}
