//go:build linux && (amd64 || arm64 || 386 || arm || riscv64 || loong64 || s390x)

package approve

// flushSupported: TCFLSH is 0x540b on these architectures (asm-generic);
// MIPS, PowerPC and SPARC use other values and skip the flush.
const flushSupported = true
