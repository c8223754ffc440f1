// Package jcs writes the RFC 8785 JSON Canonicalization Scheme (JCS) form of
// a JSON document.
//
// The canonical form is what agentid signs and hashes: AgentCard signing
// payloads, policy hashes and signatures, tool schema hashes and approval
// digests. It is defined by RFC 8785:
//
//   - insignificant whitespace is removed;
//   - object members are sorted by their keys, compared as sequences of
//     UTF-16 code units (which differs from UTF-8 byte order: U+E000–U+FFFF
//     sort after every character beyond U+FFFF);
//   - strings are written with only the escapes JSON requires (\" \\ \b \f
//     \n \r \t, and \u00xx with lowercase hex for the other control
//     characters); everything else, "/" and U+2028 included, is literal
//     UTF-8;
//   - numbers are read as IEEE 754 doubles and written as ECMAScript's
//     Number.prototype.toString does, so 1.0 becomes 1, 1e21 becomes 1e+21
//     and -0 becomes 0.
//
// The output is byte for byte that of github.com/gowebpki/jcs, which the
// tests check on the RFC 8785 test vectors and by differential fuzzing. The
// difference is cost: gowebpki/jcs builds a tree with a string per value and
// a UTF-16 copy of every key, while this package parses into a flat, reused
// list of tokens and writes the output in one pass over it, so
// canonicalizing a small document allocates only its output.
//
// Input must be a single JSON value (RFC 8259). Everything gowebpki/jcs
// rejects is rejected too: invalid JSON, invalid UTF-8 (including encoded
// surrogates), unpaired surrogate escapes such as "\ud800", duplicate keys
// (compared after unescaping, so "a" and "\u0061" are duplicates), numbers
// beyond the double range, and nesting deeper than 10000 levels. This
// package is stricter in one respect: it validates the whole of RFC 8259
// instead of relying on the caller to pass valid JSON. Validation, duplicate
// keys and the range of numbers included, is internal/strictjson's, under
// its Canonical profile, which states these rules; this package sorts and
// writes.
package jcs
