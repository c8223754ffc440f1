// Package jsonrpc frames, strictly decodes and answers the newline-delimited
// JSON-RPC 2.0 messages that MCP speaks over stdio.
//
// It exists for a fail-closed policy proxy. The proxy decides on a message and
// then forwards the original bytes of the line; it never re-marshals them. That
// is only safe if every downstream parser (Python json, JavaScript JSON.parse,
// Go encoding/json) sees exactly the message the proxy decided on, so Decode
// rejects everything on which common parsers disagree:
//
//   - anything that is not RFC 8259 JSON: NaN and Infinity, comments, single
//     quotes, trailing commas, leading zeros, invalid UTF-8, lone surrogate
//     escapes, trailing data;
//   - duplicate keys, and keys that differ only in letter case, in any object
//     at any depth (encoding/json matches struct fields case-insensitively, so
//     {"name":"a","Name":"b"} means "b" to Go and "a" to Python);
//   - batches (JSON arrays), which MCP 2025-06 removed;
//   - envelope members other than jsonrpc, id, method, params, result and error;
//   - nesting deeper than 1000 levels, and line breaks inside a line.
//
// Decoding is a single pass over the bytes, linear in the input size. The
// decoded Message points into the line it came from.
//
// Reader splits a stream into lines with a size cap, and ErrorResponse and
// AIPError build the error lines the proxy answers with, using the error codes
// and messages of AIP v1alpha2 §7.
package jsonrpc
