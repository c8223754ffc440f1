// Package aip holds the wire constants of the Agent Identity Protocol
// (AIP v1alpha2) in one place: the JSON-RPC and AIP error codes with their
// prescribed messages (§7), the violation types reported by the validation
// server (§6.2), the token_error values of identity failures (§7.2) and the
// values of the audit log (§8).
//
// Every other package refers to these names instead of spelling a number or
// a string again, so that a code means the same thing on stdio, over HTTP
// and in the audit log.
package aip
