package strictjson

import (
	"strconv"
)

// Code says what is wrong with a document.
type Code uint8

// Syntax errors: the input is not JSON (RFC 8259), or for the strict
// profiles not JSON in UTF-8. Offset is where the problem was found; for an
// input that ends too early it is the length of the input.
const (
	_                       Code = iota
	ErrExpectedValue             // a value was due: Offset is at the offending byte or the end
	ErrExpectedKey               // a string key was due
	ErrExpectedColon             // ':' was due after a key
	ErrExpectedComma             // ',' or the closing bracket was due after a value (see Error.InObject)
	ErrTrailingData              // something follows the top-level value
	ErrInvalidLiteral            // a word that is not true, false or null; Offset is its start
	ErrInvalidNumber             // Offset is where a digit was due
	ErrUnterminatedString        // the input ends inside a string; Offset is the end
	ErrControlCharacter          // an unescaped byte below 0x20 in a string
	ErrInvalidUTF8               // bytes that are not UTF-8 in a string (strict profiles)
	ErrInvalidEscape             // Offset is the backslash; End is past the escape character, or the end of the input
	ErrInvalidUnicodeEscape      // \u without four hex digits; Offset is the backslash, End the first digit
	ErrLoneSurrogate             // a \u escape of half a surrogate pair (strict profiles); see Error.End
)

// Refusals: the input is JSON but breaks a rule of the profile. The scanner
// keeps going after a refusal, so that a syntax error later in the input
// still takes precedence.
const (
	ErrDuplicateKey Code = iota + 64 // Offset and End delimit the second key, quotes included
	ErrTooDeep                       // Offset is the bracket that opens one level too many
	ErrNumberRange                   // Offset and End delimit the number
	ErrTooLarge                      // the input is larger than the profile's MaxSize
)

// codeText is the one text of each code. Error adds what the code's
// fields tell (the end of the input, the kind of bracket, the profile's
// limit) and the offset; packages that report a scanner error wrap it
// rather than describe it again, so that a problem reads the same wherever
// it is found.
var codeText = [...]string{
	ErrExpectedValue:        "expected a value",
	ErrExpectedKey:          "expected a string key",
	ErrExpectedColon:        "expected ':' after an object key",
	ErrExpectedComma:        "expected ',' or a closing bracket",
	ErrTrailingData:         "data after the top-level value",
	ErrInvalidLiteral:       "invalid literal",
	ErrInvalidNumber:        "invalid number",
	ErrUnterminatedString:   "unterminated string",
	ErrControlCharacter:     "control character in a string",
	ErrInvalidUTF8:          "invalid UTF-8 in a string",
	ErrInvalidEscape:        "invalid escape in a string",
	ErrInvalidUnicodeEscape: `invalid \u escape in a string`,
	ErrLoneSurrogate:        "unpaired surrogate escape in a string",
	ErrDuplicateKey:         "duplicate key",
	ErrTooDeep:              "nesting too deep",
	ErrNumberRange:          "number beyond the range of a double",
	ErrTooLarge:             "document too large",
}

// String returns the code's text, e.g. "duplicate key".
func (c Code) String() string {
	if int(c) < len(codeText) && codeText[c] != "" {
		return codeText[c]
	}
	return "Code(" + strconv.Itoa(int(c)) + ")"
}

// Error is what is wrong with a document and where. It never quotes the
// document, which may be large or hostile and may end up in a log.
type Error struct {
	Code Code
	// Offset is the byte offset at which the problem starts (see the Code
	// constants).
	Offset int
	// End is where the scanner stopped reading the element at fault, for
	// the codes that concern one: the end of a duplicate key or of an
	// out-of-range number, and for escapes the position just past what was
	// read of them. For ErrLoneSurrogate: Offset+6 when the high surrogate
	// escape is not followed by another \u escape (or the escape is a low
	// surrogate), Offset+8 when that escape has no four hex digits, and
	// Offset+12 when it is not a low surrogate.
	End int
	// EOF reports a syntax error found at the end of the input.
	EOF bool
	// InObject reports, for ErrExpectedComma, that the value ended a
	// member of an object rather than an element of an array.
	InObject bool

	// What the profile said, for the message: the depth limit
	// (ErrTooDeep), that keys are compared after case folding
	// (ErrDuplicateKey), that integers are limited to 2^53 in magnitude and
	// the number is one (ErrNumberRange).
	limit   int
	fold    bool
	integer bool
}

// Syntax reports whether e is a syntax error (the input is not JSON) rather
// than a refusal of valid JSON.
func (e *Error) Syntax() bool { return e.Code < ErrDuplicateKey }

// Message returns what is wrong and where, without the package prefix of
// Error, e.g. "duplicate key (keys must differ in more than letter case)
// at offset 20": the text for whoever sent the document, who knows nothing
// of this package.
func (e *Error) Message() string {
	msg := e.Code.String()
	switch {
	case e.EOF && e.Code != ErrUnterminatedString:
		msg = "unexpected end of input"
	case e.Code == ErrExpectedComma && e.InObject:
		msg = "expected ',' or '}'"
	case e.Code == ErrExpectedComma:
		msg = "expected ',' or ']'"
	case e.Code == ErrDuplicateKey && e.fold:
		msg = "duplicate key (keys must differ in more than letter case)"
	case e.Code == ErrTooDeep && e.limit > 0:
		msg = "nesting deeper than " + strconv.Itoa(e.limit) + " levels"
	case e.Code == ErrNumberRange && e.integer:
		msg = "integer beyond 2^53 in magnitude"
	case e.Code == ErrTooLarge:
		msg = "document larger than " + strconv.Itoa(e.Offset) + " bytes"
	}
	return msg + " at offset " + strconv.Itoa(e.Offset)
}

// Error returns "strictjson: " and the Message.
func (e *Error) Error() string { return "strictjson: " + e.Message() }
