package strictjson

// Profile is the set of rules a document must follow beyond RFC 8259. The
// profiles are the package variables below, one per format agentid reads;
// they differ only where the formats do, and every limit is here.
type Profile struct {
	name string
	rules
}

type rules struct {
	maxDepth int // deepest nesting of arrays and objects; 0 for no limit
	maxSize  int // largest document in bytes; 0 for no limit of the scanner's own
	keys     keyRule
	strict   bool // strings must be valid UTF-8 without lone surrogate escapes
	numbers  numberRule
	// validated: the document was admitted before; a string ends at its
	// first unescaped quote and its contents are not checked again.
	validated bool
}

type keyRule uint8

const (
	keysAny   keyRule = iota // no check
	keysExact                // no two keys of one object are equal after unescaping
	keysFold                 // nor equal after case folding (see Fold)
)

type numberRule uint8

const (
	numbersAny    numberRule = iota // any RFC 8259 number
	numbersFinite                   // also within the range of an IEEE 754 double
	numbersIJSON                    // also integers within ±2^53 (RFC 7493 §2.2)
)

// maxSafeInteger is 2^53, the largest integer below which every integer is
// exactly a double.
const maxSafeInteger = 1 << 53

var (
	// MCP is the profile of MCP JSON-RPC messages and of every part of them
	// (params, tool arguments, results). A policy proxy decides on one
	// reading of a message and forwards its bytes to a server that reads it
	// with another parser, so nothing that two parsers could read
	// differently is accepted: strings are valid UTF-8 without lone
	// surrogate escapes, and no object at any depth has two keys that are
	// equal after unescaping and case folding. Nesting is limited to 1000
	// levels (Python's json raises RecursionError not far above). Numbers
	// are not restricted: tool arguments carry whatever numbers the tool
	// takes, and they are forwarded as written. The scanner sets no size
	// limit: the framing caps each line (jsonrpc.DefaultMaxLineSize, 16
	// MiB, configurable with --max-line-size).
	MCP = Profile{"MCP", rules{maxDepth: 1000, keys: keysFold, strict: true, numbers: numbersAny}}

	// AgentCard is the profile of A2A AgentCards. A card is signed over its
	// RFC 8785 canonical form and consumed by other parsers, so on top of
	// MCP's rules its numbers must survive the trip through an IEEE 754
	// double that RFC 8785 makes: integers beyond ±2^53 are refused (two of
	// them could canonicalize to the same bytes while a big-number parser
	// reads different values, so a signed card could be altered without
	// breaking its signature) and so are numbers beyond the double range.
	// That is RFC 7493 (I-JSON). Cards nest a handful of levels; 64 keeps
	// the recursive canonicalizer and the Kagenti compatibility decoder far
	// from stack and time exhaustion. 1 MiB is the size the Kagenti fetcher
	// reads.
	AgentCard = Profile{"AgentCard", rules{maxDepth: 64, maxSize: 1 << 20, keys: keysFold, strict: true, numbers: numbersIJSON}}

	// JOSE is the profile of JOSE headers, JWT claims and JWK sets (SPIFFE
	// trust bundles are JWK sets). The rules are AgentCard's: RFC 7519 wants
	// unique claim names, go-jose and JavaScript's jose read numbers as
	// doubles (so an "exp" beyond 2^53 would mean two things), and go-jose
	// matches header and claim names case-insensitively through
	// encoding/json. The size limit is that of the largest JOSE document
	// read, a trust bundle (4 MiB); tokens and protected headers are capped
	// much lower by their callers before they are base64-decoded.
	JOSE = Profile{"JOSE", rules{maxDepth: 64, maxSize: 4 << 20, keys: keysFold, strict: true, numbers: numbersIJSON}}

	// Canonical is the profile of input to RFC 8785 canonicalization
	// (internal/jcs), which must accept exactly what gowebpki/jcs accepts:
	// valid UTF-8 without lone surrogate escapes, no two keys equal after
	// unescaping (case variants are distinct keys to RFC 8785), numbers
	// within the double range (beyond-2^53 integers are rounded, as
	// ECMAScript does), and 10000 levels of nesting, the limit of
	// encoding/json and gowebpki/jcs. Callers bound the size.
	Canonical = Profile{"Canonical", rules{maxDepth: 10000, keys: keysExact, strict: true, numbers: numbersFinite}}

	// Syntax is RFC 8259 syntax as encoding/json reads it (json.Valid), and
	// nothing more: strings may hold invalid UTF-8 and lone surrogate
	// escapes (encoding/json decodes both to U+FFFD), keys may repeat, and
	// nesting is unlimited (the scanner does not recurse). It is for walking
	// values that a strict profile has already admitted, or that are only
	// searched and never decided on (DLP), where refusing what a consumer
	// reads would only lose data.
	Syntax = Profile{name: "Syntax"}

	// Validated walks a document already known to be valid JSON (one that
	// a profile admitted, such as jsonrpc.Decode's messages and every part
	// of them) without checking its strings again: each ends at its first
	// unescaped quote, and escapes, control characters and UTF-8 inside are
	// taken as they are. Structure, numbers and literals are still read as
	// Syntax reads them. On valid JSON it tokenizes exactly as Syntax does,
	// in a fraction of the time strings take to validate; on other bytes it
	// may accept what Syntax refuses, so never use it where validity is not
	// already established.
	Validated = Profile{"Validated", rules{validated: true}}
)

// String returns the profile's name.
func (p Profile) String() string { return p.name }

// MaxDepth returns the deepest nesting of arrays and objects p accepts, or
// 0 for no limit.
func (p Profile) MaxDepth() int { return p.maxDepth }

// MaxSize returns the largest document p accepts, in bytes, or 0 when the
// scanner applies no limit of its own.
func (p Profile) MaxSize() int { return p.maxSize }
