// Package jsonstr writes and reads JSON string literals without reflection.
//
// Code that builds JSON by hand (the audit log, JSON-RPC error responses,
// DLP redaction) needs to quote arbitrary text, and code that validates JSON
// itself needs to turn a string literal back into text. encoding/json does
// both only through a full Marshal or Unmarshal, which costs allocations and
// offers no control over which characters are escaped. This package does
// just the string part, appending to a caller's buffer.
//
// Append never fails: bytes that are not valid UTF-8 are written as \ufffd,
// as encoding/json writes them, so the output is always valid UTF-8 JSON.
// How much beyond the JSON minimum it escapes is chosen with an [Escape]
// level. [AppendUnescaped] decodes the body of a literal that a scanner has
// already validated; it does no validation of its own, and the scanners
// share [Hex4] to check \u escapes.
package jsonstr
