package strictjson

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"strconv"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/agentid/agentid/internal/jsonstr"
)

// Kind is the kind of a Token.
type Kind uint8

const (
	None      Kind = iota // the zero Token
	Object                // '{' from Next; a whole object from Skip
	ObjectEnd             // '}'
	Array                 // '[' from Next; a whole array from Skip
	ArrayEnd              // ']'
	Key                   // a member name, a string; its ':' is consumed with it
	String
	Number
	True
	False
	Null
	EOF // the end of the input, after the top-level value
)

var kindNames = [...]string{"none", "object", "end of object", "array", "end of array", "key", "string", "number", "true", "false", "null", "end of input"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Token is one token of a document: its kind and its bytes,
// data[Start:End]. Strings and keys include their quotes; numbers are the
// literal as written.
type Token struct {
	Kind       Kind
	flags      uint8
	Start, End int
}

const (
	flagEscaped  uint8 = 1 << iota // a string with backslash escapes
	flagNonASCII                   // a string with bytes beyond ASCII
	flagFraction                   // a number with a fraction or an exponent
)

// Escaped reports whether a String or Key token contains backslash escapes,
// so that its text differs from its bytes between the quotes.
func (t Token) Escaped() bool { return t.flags&flagEscaped != 0 }

// ASCII reports whether a String or Key token holds only ASCII bytes.
func (t Token) ASCII() bool { return t.flags&flagNonASCII == 0 }

// Integer reports whether a Number token has neither a fraction nor an
// exponent.
func (t Token) Integer() bool { return t.Kind == Number && t.flags&flagFraction == 0 }

// Scanner reads one JSON document token by token and validates it against
// a Profile as it goes, in a single pass, without recursion and, once its
// buffers have grown, without allocating.
//
// Next returns syntax errors, which end the scan. A refusal (duplicate key,
// nesting too deep, number out of range) does not: the scanner records the
// first one, returned by Refusal and by Finish, and keeps going, so that a
// syntax error later in the document still wins and a caller can finish
// reading what it needs.
type Scanner struct {
	data    []byte
	pos     int
	state   uint8
	p       rules
	depth   int
	err     *Error // sticky: a syntax error, or ErrTooLarge
	refusal *Error
	spaced  bool  // whitespace was seen outside strings
	obj     bool  // the innermost open container is an object
	checked bool  // and its keys are checked
	tok     Token // the token the last step read

	stack  []uint64 // bit d-1 is set when the container at depth d is an object
	frames []frame  // the open objects whose keys are checked, innermost last
	maps   []map[string]struct{}
	keys   []keyRef // the keys of those objects, object after object
	fold   []byte   // decoded or folded keys, referenced by keys
	text   []byte   // scratch for Text
	tmp    []byte   // scratch for the duplicate check
}

// frame is an open object whose keys are checked. It holds no pointer, so
// that pushing one costs no write barrier: the map of a large object is in
// s.maps.
type frame struct {
	keys, fold int32  // len(s.keys) and len(s.fold) when it opened
	seen       int32  // 1 + the index in s.maps of its duplicate map; 0 for none yet
	lens       uint64 // the keyBit of every key seen
}

// keyRef is a key seen in an open object. When inFold is false the key had
// no escapes (and, for case folding, only ASCII), so its text is
// data[start:end]; otherwise its decoded, and for case folding folded, form
// is fold[start:end].
type keyRef struct {
	start, end int32
	inFold     bool
}

// maxInt32 is the scanner's own size limit, under every profile: offsets
// of keys are kept in 32 bits.
const maxInt32 = 1<<31 - 1

// mapThreshold is the number of keys after which an object's duplicate
// check switches from comparing with every earlier key (fastest for the
// handful of keys real objects have) to a map, so that an object with 100k
// keys stays linear.
const mapThreshold = 32

const (
	stValue      uint8 = iota // a value is due: at the start, after ':', after ',' in an array
	stFirstValue              // a value or ']' is due
	stKey                     // a key is due, after ',' in an object
	stFirstKey                // a key or '}' is due
	stAfter                   // ',' or a closing bracket, or at depth 0 the end of the input
	stDone
)

var scannerPool = sync.Pool{New: func() any { return new(Scanner) }}

// NewScanner returns a Scanner for data under p, from a pool. Release
// returns it to the pool when the caller is done with it and with every
// slice Text returned.
func NewScanner(p Profile, data []byte) *Scanner {
	s := scannerPool.Get().(*Scanner)
	s.Reset(p, data)
	return s
}

// Release returns s to the pool NewScanner takes it from. s must not be
// used afterwards.
func (s *Scanner) Release() {
	// One huge document must not pin its scratch memory in the pool; 10000
	// levels of objects (the Canonical limit) still fit.
	const maxFrames, maxKeys, maxBytes = 1 << 14, 1 << 15, 256 << 10
	if cap(s.stack) > maxFrames/64 || cap(s.frames) > maxFrames || cap(s.keys) > maxKeys ||
		cap(s.fold) > maxBytes || cap(s.text) > maxBytes || cap(s.tmp) > maxBytes {
		return
	}
	clear(s.maps) // an unfinished scan leaves its open objects' maps
	s.data, s.maps = nil, s.maps[:0]
	scannerPool.Put(s)
}

// Reset makes s read data under p from the start, keeping its buffers.
func (s *Scanner) Reset(p Profile, data []byte) {
	s.data, s.pos, s.state, s.p, s.depth = data, 0, stValue, p.rules, 0
	s.err, s.refusal, s.spaced, s.tok, s.obj, s.checked = nil, nil, false, Token{}, false, false
	s.stack, s.frames, s.keys, s.fold = s.stack[:0], s.frames[:0], s.keys[:0], s.fold[:0]
	clear(s.maps)
	s.maps = s.maps[:0]
	if p.maxSize > 0 && len(data) > p.maxSize {
		s.err = &Error{Code: ErrTooLarge, Offset: p.maxSize, End: len(data)}
	} else if len(data) > maxInt32 {
		s.err = &Error{Code: ErrTooLarge, Offset: maxInt32, End: len(data)}
	}
}

// Data returns the input.
func (s *Scanner) Data() []byte { return s.data }

// Offset returns the offset of the next byte to read.
func (s *Scanner) Offset() int { return s.pos }

// Depth returns the number of arrays and objects that are open.
func (s *Scanner) Depth() int { return s.depth }

// Refusal returns the first refusal found so far, or nil.
func (s *Scanner) Refusal() *Error { return s.refusal }

// Spaced reports whether the scanner has seen whitespace outside strings so
// far, which AppendCompact would remove. After a whole document without it,
// the document is its own compact form.
func (s *Scanner) Spaced() bool { return s.spaced }

// Next returns the next token. After the top-level value it returns a token
// of Kind EOF, having checked that nothing but whitespace follows. A syntax
// error is sticky: every later call returns it again.
func (s *Scanner) Next() (Token, error) {
	if s.err != nil {
		return Token{}, s.err
	}
	if err := s.next(); err != nil {
		s.err = err
		return Token{}, err
	}
	return s.tok, nil
}

// Skip reads the next value whole and returns it as one token; for an
// object or an array the token spans it from bracket to bracket. Where no
// value is due (a key, or the end of a container or of the input) it
// returns that token, as Next would.
func (s *Scanner) Skip() (Token, error) {
	if s.err != nil {
		return Token{}, s.err
	}
	if err := s.skip(); err != nil {
		s.err = err
		return Token{}, err
	}
	return s.tok, nil
}

// skip is Skip without the sticky error.
func (s *Scanner) skip() *Error {
	if err := s.next(); err != nil {
		return err
	}
	if k := s.tok.Kind; k != Object && k != Array {
		return nil
	}
	t := s.tok
	for base := s.depth - 1; s.depth > base; {
		if err := s.next(); err != nil {
			return err
		}
	}
	t.End = s.pos
	s.tok = t
	return nil
}

// Finish reads the rest of the document and returns the first syntax
// error, or else the first refusal, or nil when the document is acceptable
// under the profile.
func (s *Scanner) Finish() error {
	for s.err == nil && s.state != stDone {
		if err := s.next(); err != nil {
			s.err = err
		}
	}
	if s.err != nil {
		return s.err
	}
	if s.refusal != nil {
		return s.refusal
	}
	return nil
}

// Text returns the text of a String or Key token: the bytes between its
// quotes when it has no escapes, else its decoded form in a buffer of the
// scanner that the next call to Text reuses. A lone surrogate escape
// (possible only under Syntax) decodes to U+FFFD and other bytes are kept
// as they are, so under Syntax the text may not be valid UTF-8.
func (s *Scanner) Text(t Token) []byte {
	body := s.data[t.Start+1 : t.End-1]
	if !t.Escaped() {
		return body
	}
	s.text = jsonstr.AppendUnescaped(s.text[:0], body)
	return s.text
}

func (s *Scanner) fail(code Code, at int) *Error {
	s.pos = at
	return &Error{Code: code, Offset: at, End: at, EOF: at >= len(s.data)}
}

func (s *Scanner) failComma(at int, obj bool) *Error {
	e := s.fail(ErrExpectedComma, at)
	e.InObject = obj
	return e
}

func (s *Scanner) refuse(code Code, at, end int) {
	if s.refusal == nil {
		s.refusal = &Error{Code: code, Offset: at, End: end, limit: s.p.maxDepth, fold: s.p.keys == keysFold,
			integer: s.p.numbers == numbersIJSON && s.tok.Integer()}
	}
}

func isSpace(c byte) bool { return spaceTable[c] }

var spaceTable = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

// ws returns the index of the first non-whitespace byte at or after i.
func (s *Scanner) ws(i int) int {
	d := s.data
	j := i
	for j < len(d) && spaceTable[d[j]] {
		j++
	}
	if j != i {
		s.spaced = true
	}
	return j
}

func (s *Scanner) inObject() bool {
	d := s.depth - 1
	return s.stack[d>>6]>>(d&63)&1 != 0
}

// checksKeys reports whether the keys of an object at depth d are checked:
// beyond the depth limit the document is refused already, and only its
// syntax is still read.
func (s *Scanner) checksKeys(d int) bool {
	return s.p.keys != keysAny && (s.p.maxDepth == 0 || d <= s.p.maxDepth)
}

// next reads one token into s.tok.
func (s *Scanner) next() *Error {
	i := s.ws(s.pos)
	d := s.data
	switch s.state {
	case stAfter:
		if s.depth == 0 {
			if i < len(d) {
				return s.fail(ErrTrailingData, i)
			}
			s.pos, s.state = i, stDone
			s.tok = Token{Kind: EOF, Start: i, End: i}
			return nil
		}
		obj := s.obj
		if i >= len(d) {
			return s.failComma(i, obj)
		}
		switch c := d[i]; {
		case c == ',':
			i = s.ws(i + 1)
			if obj {
				return s.key(i)
			}
			return s.value(i)
		case c == '}' && obj, c == ']' && !obj:
			s.close(i, obj)
			return nil
		}
		return s.failComma(i, obj)
	case stValue:
		return s.value(i)
	case stKey:
		return s.key(i)
	case stFirstKey:
		if i < len(d) && d[i] == '}' {
			s.close(i, true)
			return nil
		}
		return s.key(i)
	case stFirstValue:
		if i < len(d) && d[i] == ']' {
			s.close(i, false)
			return nil
		}
		return s.value(i)
	}
	s.tok = Token{Kind: EOF, Start: len(d), End: len(d)}
	return nil
}

func (s *Scanner) close(i int, obj bool) {
	if s.checked {
		f := s.frames[len(s.frames)-1]
		s.keys, s.fold = s.keys[:f.keys], s.fold[:f.fold]
		if f.seen != 0 {
			s.maps[f.seen-1] = nil
			s.maps = s.maps[:f.seen-1]
		}
		s.frames = s.frames[:len(s.frames)-1]
	}
	s.depth--
	if s.depth > 0 {
		s.obj = s.inObject()
		s.checked = s.obj && s.checksKeys(s.depth)
	} else {
		s.obj, s.checked = false, false
	}
	s.pos, s.state = i+1, stAfter
	k := ArrayEnd
	if obj {
		k = ObjectEnd
	}
	s.tok = Token{Kind: k, Start: i, End: i + 1}
}

func (s *Scanner) open(i int, obj bool) {
	if s.p.maxDepth > 0 && s.depth == s.p.maxDepth {
		s.refuse(ErrTooDeep, i, i+1)
	}
	d := s.depth
	if d>>6 >= len(s.stack) {
		s.stack = append(s.stack, 0)
	}
	s.depth++
	s.pos = i + 1
	if !obj {
		s.stack[d>>6] &^= 1 << (d & 63)
		s.obj, s.checked = false, false
		s.state = stFirstValue
		s.tok = Token{Kind: Array, Start: i, End: i + 1}
		return
	}
	s.stack[d>>6] |= 1 << (d & 63)
	s.obj, s.checked = true, s.checksKeys(s.depth)
	if s.checked {
		s.frames = append(s.frames, frame{keys: int32(len(s.keys)), fold: int32(len(s.fold))})
	}
	s.state = stFirstKey
	s.tok = Token{Kind: Object, Start: i, End: i + 1}
}

func (s *Scanner) value(i int) *Error {
	d := s.data
	if i >= len(d) {
		return s.fail(ErrExpectedValue, i)
	}
	switch c := d[i]; c {
	case '"':
		end, flags, err := s.str(i)
		if err != nil {
			return err
		}
		s.pos, s.state = end, stAfter
		s.tok = Token{Kind: String, flags: flags, Start: i, End: end}
		return nil
	case '{':
		s.open(i, true)
		return nil
	case '[':
		s.open(i, false)
		return nil
	case 't':
		return s.literal(i, "true", True)
	case 'f':
		return s.literal(i, "false", False)
	case 'n':
		return s.literal(i, "null", Null)
	default:
		if c == '-' || '0' <= c && c <= '9' {
			return s.number(i)
		}
		return s.fail(ErrExpectedValue, i)
	}
}

func (s *Scanner) literal(i int, lit string, k Kind) *Error {
	if len(s.data)-i < len(lit) || string(s.data[i:i+len(lit)]) != lit {
		return s.fail(ErrInvalidLiteral, i)
	}
	s.pos, s.state = i+len(lit), stAfter
	s.tok = Token{Kind: k, Start: i, End: i + len(lit)}
	return nil
}

func (s *Scanner) key(i int) *Error {
	d := s.data
	if i >= len(d) || d[i] != '"' {
		return s.fail(ErrExpectedKey, i)
	}
	end, flags, err := s.str(i)
	if err != nil {
		return err
	}
	if s.checked {
		s.checkKey(i, end, flags)
	}
	j := s.ws(end)
	if j >= len(d) || d[j] != ':' {
		return s.fail(ErrExpectedColon, j)
	}
	s.pos, s.state = s.ws(j+1), stValue
	s.tok = Token{Kind: Key, flags: flags, Start: i, End: end}
	return nil
}

// plainStrict and plainLax mark the string bytes that need no attention:
// printable ASCII other than '"' and '\\', and for Syntax every byte
// beyond ASCII too.
var plainStrict, plainLax = func() (strict, lax [256]bool) {
	for c := 0x20; c < 256; c++ {
		lax[c] = c != '"' && c != '\\'
		strict[c] = lax[c] && c < utf8.RuneSelf
	}
	return
}()

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// special returns a mask with bit 7 of the first (lowest) of 8 bytes set
// if it is a quote, a backslash or a control character (with nonASCII, or
// beyond ASCII), and perhaps bits of later bytes; zero if there is none.
// Each subtraction borrows into bit 7 of a byte that is below 0x20, or zero
// after the XOR with the quote or the backslash; a borrow only ever carries
// upwards, so the lowest flagged byte is exact. Masking with the complement
// of v keeps only bytes below 0x80, as the three targets are.
func special(v uint64, nonASCII bool) uint64 {
	if nonASCII {
		return strictSpecial(v)
	}
	return ((v - lsb*0x20) | ((v ^ lsb*'"') - lsb) | ((v ^ lsb*'\\') - lsb)) &^ v & msb
}

// skipPlain returns the offset of the first byte at or after j that special
// flags, or an offset less than 8 bytes from the end of d. Under a strict
// profile it tests 32 bytes a round with one branch.
func skipPlain(d []byte, j int, strict bool) int {
	if strict {
		for ; j+32 <= len(d); j += 32 {
			w := d[j : j+32 : j+32]
			m0 := strictSpecial(binary.LittleEndian.Uint64(w[0:8]))
			m1 := strictSpecial(binary.LittleEndian.Uint64(w[8:16]))
			m2 := strictSpecial(binary.LittleEndian.Uint64(w[16:24]))
			m3 := strictSpecial(binary.LittleEndian.Uint64(w[24:32]))
			if m0|m1|m2|m3 == 0 {
				continue
			}
			switch {
			case m0 != 0:
				return j + bits.TrailingZeros64(m0)>>3
			case m1 != 0:
				return j + 8 + bits.TrailingZeros64(m1)>>3
			case m2 != 0:
				return j + 16 + bits.TrailingZeros64(m2)>>3
			}
			return j + 24 + bits.TrailingZeros64(m3)>>3
		}
	}
	for ; j+8 <= len(d); j += 8 {
		if m := special(binary.LittleEndian.Uint64(d[j:]), strict); m != 0 {
			return j + bits.TrailingZeros64(m)>>3
		}
	}
	return j
}

// strictSpecial is special under a strict profile, which also flags the
// bytes beyond ASCII: the | v that does so subsumes the &^ v of the lax
// form.
func strictSpecial(v uint64) uint64 {
	return ((v - lsb*0x20) | ((v ^ lsb*'"') - lsb) | ((v ^ lsb*'\\') - lsb) | v) & msb
}

// str scans the string whose opening quote is at data[i] and returns the
// offset just past its closing quote.
func (s *Scanner) str(i int) (end int, flags uint8, err *Error) {
	if s.p.validated {
		return s.validatedStr(i)
	}
	d := s.data
	strict := s.p.strict
	plain := &plainLax
	if strict {
		plain = &plainStrict
	}
	j := i + 1
	for {
		// A byte at a time, as most strings and runs between escapes are
		// short; after 16 plain bytes, 8 bytes at a time.
		lim := min(j+16, len(d))
		for j < lim && plain[d[j]] {
			j++
		}
		if j == lim && j < len(d) {
			j = skipPlain(d, j, strict)
			continue
		}
		if j >= len(d) {
			return 0, 0, s.fail(ErrUnterminatedString, len(d))
		}
		switch c := d[j]; {
		case c == '"':
			return j + 1, flags, nil
		case c == '\\':
			flags |= flagEscaped
			n, err := s.escape(j)
			if err != nil {
				return 0, 0, err
			}
			j += n
		case c < 0x20:
			return 0, 0, s.fail(ErrControlCharacter, j)
		default:
			// Beyond ASCII, under a strict profile. Invalid UTF-8 is refused
			// rather than replaced: parsers differ in how many U+FFFD they
			// substitute, and some refuse it. DecodeRune also refuses
			// surrogates encoded in UTF-8.
			flags |= flagNonASCII
			for j < len(d) && d[j] >= utf8.RuneSelf {
				r, n := utf8.DecodeRune(d[j:])
				if r == utf8.RuneError && n == 1 {
					return 0, 0, s.fail(ErrInvalidUTF8, j)
				}
				j += n
			}
		}
	}
}

// validatedStr is str for the Validated profile: stringEnd. Strings count
// as non-ASCII, which only costs the fold of a key compared under keysFold,
// which Validated does not compare.
func (s *Scanner) validatedStr(i int) (end int, flags uint8, err *Error) {
	end, escaped, ok := stringEnd(s.data, i+1)
	if !ok {
		return 0, 0, s.fail(ErrUnterminatedString, len(s.data))
	}
	flags = flagNonASCII
	if escaped {
		flags |= flagEscaped
	}
	return end, flags, nil
}

// escape validates the escape sequence at data[i] (a backslash) and returns
// its length. Under a strict profile a \u escape of a surrogate must be a
// high surrogate immediately followed by an escaped low surrogate: Python
// accepts a lone surrogate into a str that later fails to encode, Go
// replaces it with U+FFFD, and JavaScript keeps it, so the three would see
// three different strings.
func (s *Scanner) escape(i int) (int, *Error) {
	d := s.data
	if i+1 >= len(d) {
		return 0, &Error{Code: ErrInvalidEscape, Offset: i, End: len(d), EOF: true}
	}
	switch d[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, nil
	case 'u':
	default:
		return 0, &Error{Code: ErrInvalidEscape, Offset: i, End: i + 2}
	}
	r, ok := jsonstr.Hex4(d[i+2:])
	if !ok {
		return 0, &Error{Code: ErrInvalidUnicodeEscape, Offset: i, End: i + 2, EOF: len(d)-(i+2) < 4}
	}
	if !s.p.strict || r < 0xD800 || r > 0xDFFF {
		return 6, nil
	}
	if r >= 0xDC00 {
		return 0, &Error{Code: ErrLoneSurrogate, Offset: i, End: i + 6}
	}
	if i+7 >= len(d) || d[i+6] != '\\' || d[i+7] != 'u' {
		return 0, &Error{Code: ErrLoneSurrogate, Offset: i, End: i + 6}
	}
	r2, ok := jsonstr.Hex4(d[i+8:])
	if !ok {
		return 0, &Error{Code: ErrLoneSurrogate, Offset: i, End: i + 8, EOF: len(d)-(i+8) < 4}
	}
	if r2 < 0xDC00 || r2 > 0xDFFF {
		return 0, &Error{Code: ErrLoneSurrogate, Offset: i, End: i + 12}
	}
	return 12, nil
}

// number scans the RFC 8259 number at data[i] and applies the profile's
// range rule. The literal is kept as written; it is converted to a float
// only in the rare case where its magnitude is too close to the limit of a
// double to tell from its digits.
func (s *Scanner) number(i int) *Error {
	d := s.data
	j := i
	if d[j] == '-' {
		j++
	}
	intStart := j
	switch {
	case j < len(d) && d[j] == '0':
		j++ // no leading zeros: "01" ends the number after "0" and fails later
	case j < len(d) && '1' <= d[j] && d[j] <= '9':
		for j++; j < len(d) && '0' <= d[j] && d[j] <= '9'; j++ {
		}
	default:
		return s.fail(ErrInvalidNumber, j)
	}
	intEnd, fracStart, fracEnd := j, j, j
	var flags uint8
	if j < len(d) && d[j] == '.' {
		flags = flagFraction
		j++
		fracStart = j
		for j < len(d) && '0' <= d[j] && d[j] <= '9' {
			j++
		}
		if j == fracStart {
			return s.fail(ErrInvalidNumber, j)
		}
		fracEnd = j
	}
	expStart := j
	if j < len(d) && (d[j] == 'e' || d[j] == 'E') {
		flags = flagFraction
		j++
		if j < len(d) && (d[j] == '+' || d[j] == '-') {
			j++
		}
		k := j
		for j < len(d) && '0' <= d[j] && d[j] <= '9' {
			j++
		}
		if j == k {
			return s.fail(ErrInvalidNumber, j)
		}
	}
	s.pos, s.state = j, stAfter
	s.tok = Token{Kind: Number, flags: flags, Start: i, End: j}
	switch s.p.numbers {
	case numbersIJSON:
		if flags == 0 {
			// Up to 15 digits cannot exceed 2^53; only longer ones need parsing.
			if intEnd-intStart > 15 {
				n, err := strconv.ParseUint(unsafe.String(&d[intStart], intEnd-intStart), 10, 64)
				if err != nil || n > maxSafeInteger {
					s.refuse(ErrNumberRange, i, j)
				}
			}
			break
		}
		fallthrough
	case numbersFinite:
		if !finite(d[i:j], intEnd-intStart, d[intStart] == '0', d[fracStart:fracEnd], d[expStart:j]) {
			s.refuse(ErrNumberRange, i, j)
		}
	}
	return nil
}

// finite reports whether the valid number lit is within the range of a
// double (it does not round to ±Inf; underflow to zero is fine). intDigits
// is the length of its integer part, zeroInt whether that part is "0", frac
// its fraction digits and exp its exponent part ("e+12"), both possibly
// empty.
func finite(lit []byte, intDigits int, zeroInt bool, frac, exp []byte) bool {
	// The decimal exponent of the leading significant digit.
	var e int
	switch {
	case !zeroInt:
		e = intDigits - 1
	default:
		k := 0
		for k < len(frac) && frac[k] == '0' {
			k++
		}
		if k == len(frac) {
			return true // zero
		}
		e = -(k + 1)
	}
	if len(exp) > 0 {
		exp = exp[1:]
		neg := false
		if exp[0] == '+' || exp[0] == '-' {
			neg = exp[0] == '-'
			exp = exp[1:]
		}
		for len(exp) > 1 && exp[0] == '0' {
			exp = exp[1:]
		}
		if len(exp) > 9 {
			return neg // huge: underflows to zero, or overflows
		}
		x, _ := strconv.Atoi(unsafe.String(&exp[0], len(exp)))
		if neg {
			x = -x
		}
		e += x
	}
	switch {
	case e < 308:
		return true
	case e > 308:
		return false
	}
	// The error, which would keep the literal, is only tested, so the input
	// can be viewed as a string instead of copied.
	_, err := strconv.ParseFloat(unsafe.String(&lit[0], len(lit)), 64)
	return err == nil
}

// checkKey records the key data[start:end] (quotes included) in the
// innermost object and refuses it if an earlier key of that object is the
// same after unescaping, and for case folding after folding.
func (s *Scanner) checkKey(start, end int, flags uint8) {
	f := &s.frames[len(s.frames)-1]
	var k keyRef
	fold := s.p.keys == keysFold
	if flags&flagEscaped == 0 && (!fold || flags&flagNonASCII == 0) {
		k = keyRef{start: int32(start + 1), end: int32(end - 1)}
	} else {
		body := s.data[start+1 : end-1]
		if flags&flagEscaped != 0 {
			s.tmp = jsonstr.AppendUnescaped(s.tmp[:0], body)
			body = s.tmp
		}
		n := len(s.fold)
		if fold {
			s.fold = AppendFold(s.fold, body)
		} else {
			s.fold = append(s.fold, body...)
		}
		k = keyRef{start: int32(n), end: int32(len(s.fold)), inFold: true}
	}
	first := int(f.keys)
	n := k.end - k.start
	bit := s.keyBit(k)
	if f.lens&bit == 0 && f.seen == 0 {
		// No earlier key of this object has the same length and first and
		// last byte (of the folded form, for a folded key), so none can be
		// equal: nearly every key.
		f.lens |= bit
		s.keys = append(s.keys, k)
		if len(s.keys)-first > mapThreshold {
			s.startMap(f, first)
		}
		return
	}
	f.lens |= bit

	dup := false
	if f.seen != 0 {
		_, dup = s.maps[f.seen-1][string(s.mapKey(k))]
	} else {
		for i := first; i < len(s.keys); i++ {
			// Equal keys have equal lengths, folded or not: a plain key is
			// ASCII, whose folded form is as long.
			if e := &s.keys[i]; e.end-e.start == n && s.sameKey(*e, k) {
				dup = true
				break
			}
		}
	}
	if dup {
		if k.inFold {
			s.fold = s.fold[:int(k.start)]
		}
		s.refuse(ErrDuplicateKey, start, end)
		return
	}
	s.keys = append(s.keys, k)
	switch n := len(s.keys) - first; {
	case f.seen != 0:
		s.maps[f.seen-1][string(s.mapKey(k))] = struct{}{}
	case n > mapThreshold:
		s.startMap(f, first)
	}
}

// startMap switches the duplicate check of the object of f, whose keys
// start at s.keys[first], to a map.
func (s *Scanner) startMap(f *frame, first int) {
	m := make(map[string]struct{}, 2*(len(s.keys)-first))
	for _, e := range s.keys[first:] {
		m[string(s.mapKey(e))] = struct{}{}
	}
	s.maps = append(s.maps, m)
	f.seen = int32(len(s.maps))
}

// keyBit returns one of 64 bits chosen by the length and the first and last
// bytes of k's folded form (for a plain key, its upper case), so that equal
// keys have equal bits.
func (s *Scanner) keyBit(k keyRef) uint64 {
	b := s.keyBytes(k)
	h := uint(len(b))
	if len(b) > 0 {
		c0, c1 := b[0], b[len(b)-1]
		if !k.inFold && s.p.keys == keysFold {
			if 'a' <= c0 && c0 <= 'z' {
				c0 -= 'a' - 'A'
			}
			if 'a' <= c1 && c1 <= 'z' {
				c1 -= 'a' - 'A'
			}
		}
		h = h*31 + uint(c0)*7 + uint(c1)
	}
	return 1 << (h & 63)
}

func (s *Scanner) keyBytes(k keyRef) []byte {
	if k.inFold {
		return s.fold[int(k.start):int(k.end)]
	}
	return s.data[int(k.start):int(k.end)]
}

// mapKey returns the form of k that the duplicate map holds: its folded
// form for case folding, else its text. It may be in s.tmp.
func (s *Scanner) mapKey(k keyRef) []byte {
	b := s.keyBytes(k)
	if k.inFold || s.p.keys != keysFold {
		return b
	}
	s.tmp = s.tmp[:0]
	for _, c := range b {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		s.tmp = append(s.tmp, c)
	}
	return s.tmp
}

func (s *Scanner) sameKey(a, b keyRef) bool {
	x, y := s.keyBytes(a), s.keyBytes(b)
	if len(x) != len(y) {
		return false
	}
	if s.p.keys != keysFold || a.inFold && b.inFold {
		return bytes.Equal(x, y)
	}
	// At least one is plain ASCII, whose folded form is its upper case;
	// the other, if folded, is compared with that.
	for i := range x {
		cx, cy := x[i], y[i]
		if !a.inFold && 'a' <= cx && cx <= 'z' {
			cx -= 'a' - 'A'
		}
		if !b.inFold && 'a' <= cy && cy <= 'z' {
			cy -= 'a' - 'A'
		}
		if cx != cy {
			return false
		}
	}
	return true
}
