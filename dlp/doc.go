// Package dlp implements the data-loss-prevention scanning of AIP v1alpha2
// (spec §3.6): named regular-expression detectors that find sensitive data in
// tool-call arguments and tool responses and replace it with the marker
// "[REDACTED:<name>]".
//
// A Scanner is compiled once from a policy's dlp block by New and is safe for
// concurrent use. Each pattern is compiled on its own rather than joined into
// one alternation, because an alternation changes which pattern wins an
// overlap and hides how often each pattern matched.
//
// Redaction works on the original text: the match spans of every pattern that
// applies to the direction are computed first, overlapping or adjacent spans
// are merged (the pattern listed first names the merged span), and the text
// is rewritten once. A later pattern therefore never sees an earlier
// pattern's marker.
//
// RedactJSON walks a JSON value to any depth, tokenized by
// internal/strictjson, and redacts every string (object keys included) and
// number. It rewrites only the literals that changed and copies every other
// byte of the input unchanged, so no field is lost and no key is reordered.
// Patterns see the decoded string, so a secret spelled with \u escapes is
// still found. A number is scanned as written, so a card number sent as a
// JSON number does not slip through; when any part of it matches, the whole
// number becomes the marker string, because a marker cannot stand inside a
// number and a type change is better than a leak.
//
// Keys are redacted too, since a secret can be sent as a member name as
// surely as a value. Two keys of one object can then read the same (two
// secrets become one marker, or a marker meets a key that already reads
// like it), and a duplicate key is read differently by different parsers,
// so RedactJSON refuses to produce one: it returns ErrDuplicateKey, which
// withholds a response and is a redaction failure (on_redaction_failure)
// for a request. Keys are compared as strictjson.MCP compares them, after
// unescaping and case folding.
//
// Most text contains no secret, so each pattern carries a prefilter derived
// from its syntax tree: a literal, a small set of literals or a run of a
// byte class that every match must contain, plus the set of bytes a match
// can consist of. The regular expression then runs only on the stretches of
// text around such anchors, which gives exactly the matches a scan of the
// whole text would give at a small fraction of the cost. Before its anchors
// are searched, text is ruled out that lacks a byte every match needs: one of
// up to three rare bytes (the ':' or '=' of a "password: ..." detector), or
// an ASCII digit (card numbers, SSNs, addresses), the latter found once per
// text for all the patterns that need one. Case-folded ASCII literals are
// compared byte by byte unless the text holds a non-ASCII rune that folds to
// one of their letters (U+212A KELVIN SIGN, U+017F LONG S).
//
// RedactJSONValidated skips the validation of strings that RedactJSON does,
// for values already known to be valid JSON (what jsonrpc.Decode admitted):
// the proxy's response DLP would otherwise validate every byte twice.
package dlp
