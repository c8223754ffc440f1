//go:build linux && !(amd64 || arm64 || 386 || arm || riscv64 || loong64 || s390x)

package approve

const flushSupported = false
