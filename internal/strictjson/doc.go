// Package strictjson is agentid's one JSON scanner. Every package that reads
// JSON bytes itself (jsonrpc, agentcard, identity, policy, dlp, audit and
// internal/jcs) tokenizes them here, so that there is exactly one reading of
// RFC 8259 in the program, and exactly one set of the rules beyond it.
//
// That matters because agentid is a policy proxy: it decides on one reading
// of a message and forwards the bytes to a server, or signs one reading of an
// AgentCard that others verify and consume, and each of those parties parses
// the bytes again with another parser. If two of agentid's own tokenizers
// disagreed (one refusing case-variant keys with one folding rule, another
// with another; one stopping at 64 levels of nesting, another at 1000) the
// proxy could decide on a reading that another part of it, or the server,
// does not share. Each place where common parsers disagree is therefore
// refused, the same way everywhere:
//
//   - anything that is not RFC 8259: NaN and Infinity, comments, single
//     quotes, trailing commas, leading zeros or plus signs, raw control
//     characters in strings, a byte order mark, trailing data;
//   - under the strict profiles, invalid UTF-8 (parsers replace it with
//     different numbers of U+FFFD, or refuse it) and \u escapes of lone
//     surrogates (Python keeps them, Go replaces them, JavaScript keeps them
//     as lone UTF-16 units);
//   - duplicate keys, compared after unescaping ("a" and "\u0061" are the
//     same key), in any object at any depth: parsers keep the first, the
//     last, or fail;
//   - keys that differ only in case, where a profile says so: Go's
//     encoding/json matches object members to struct fields case
//     insensitively, so {"name":"a","Name":"b"} is "b" to a Go server and
//     "a" to a Python one. The rule is FoldRune: at least as broad as
//     encoding/json's, which is bytes.EqualFold (the Kelvin sign matches
//     "k", "ſ" matches "s"), and also "İ" and "ı" match "i". It does not
//     ignore '_' and '-', as encoding/json/v2 does under its opt-in
//     `case:ignore`: that would refuse distinct keys such as "max_age" and
//     "max-age", which no default decoder confuses;
//   - nesting beyond the profile's depth, numbers beyond what the profile's
//     consumers represent exactly, documents beyond its size.
//
// # Profiles
//
// The rules beyond RFC 8259 differ only where the formats do, and each
// Profile documents why:
//
//	profile    keys          numbers                 depth   size
//	MCP        unique, fold  any                     1000    (the line cap)
//	AgentCard  unique, fold  I-JSON (±2^53, finite)  64      1 MiB
//	JOSE       unique, fold  I-JSON (±2^53, finite)  64      4 MiB
//	Canonical  unique        finite doubles          10000   (the caller's)
//	Syntax     any           any                     none    none
//
// MCP is for JSON-RPC messages and their parts. AgentCard and JOSE are for
// signed documents, whose numbers must survive RFC 8785's (and go-jose's)
// trip through an IEEE 754 double. Canonical is for the input of RFC 8785
// canonicalization, which must accept exactly what gowebpki/jcs accepts: RFC
// 8785 has no notion of case variants. Syntax is exactly json.Valid, for
// values that a strict profile already admitted or that are only searched
// (DLP), never decided on.
//
// # API
//
// Validate checks a whole document. A Scanner walks one token by token with
// Next, reads a whole value with Skip and an object member by member with
// Member; it validates as it goes, in a single pass that never recurses and,
// once its buffers have grown, never allocates, so a caller can find the
// members it needs in the same pass that validates the document. Syntax
// errors stop a Scanner; refusals of valid JSON are recorded and the scan
// goes on, so a later syntax error still wins and the caller still sees the
// rest of the document (jsonrpc uses this to echo the id of an invalid
// request). Numbers stay the literals they are: nothing is converted to a
// float except, rarely, to tell whether a literal near 1e308 is finite.
//
// Text and AppendUnquote decode strings with internal/jsonstr, and
// AppendCompact removes whitespace from a value already validated, without
// validating it again.
package strictjson
