package agentcard

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/agentid/agentid/internal/strictjson"
	"strconv"
)

const (
	// maxProtectedSize caps the base64url protected header. Three RSA-4096
	// certificates in x5c take about 8 KiB; 64 KiB leaves room for anything
	// legitimate and keeps a hostile header from costing much.
	maxProtectedSize = 64 << 10
	// maxSignatureSize caps the base64url signature: RSA-8192 is 1366 chars.
	maxSignatureSize = 2048
	// maxCertSize caps one DER certificate in x5c.
	maxCertSize = 16 << 10
	// maxX5C is the most x5c entries we decode at all, whatever the
	// configured chain length: it bounds parsing work before the length
	// check can report a friendly error.
	maxX5C = 16
)

// header is a decoded JWS protected header. Only the parameters the verifier
// acts on are kept; unknown parameters are ignored unless listed in crit.
type header struct {
	alg    string
	hasAlg bool
	typ    string
	hasTyp bool
	kid    string
	hasKid bool
	// x5c holds the DER certificates, leaf first.
	x5c    [][]byte
	hasX5C bool
	// x5tS256 is the decoded x5t#S256 thumbprint.
	x5tS256    []byte
	hasX5TS256 bool
	iat, exp   int64
	hasIAT     bool
	hasExp     bool
	hasCrit    bool
	// hasJKU and hasX5U record key URLs that are ignored and never fetched;
	// they only sharpen the error when x5c is missing.
	hasJKU, hasX5U bool
	// b64False records RFC 7797 unencoded payloads, which we do not support.
	b64False bool
}

// b64url is RFC 7515's base64url without padding. Strict mode also rejects
// non-zero trailing bits, so that every value has exactly one encoding and a
// header cannot be varied without changing its bytes.
var b64url = base64.RawURLEncoding.Strict()

// b64std is the padded standard base64 of x5c entries (RFC 7515 §4.1.6).
var b64std = base64.StdEncoding.Strict()

// parseProtected decodes a base64url protected header, strictly: the JSON
// must pass the same duplicate-key and syntax checks as a card, and every
// parameter we act on must have its registered type.
func parseProtected(protected string) (*header, error) {
	if protected == "" {
		return nil, errors.New("protected header is empty")
	}
	if len(protected) > maxProtectedSize {
		return nil, fmt.Errorf("protected header is longer than %d bytes", maxProtectedSize)
	}
	raw, err := b64url.DecodeString(protected)
	if err != nil {
		return nil, errors.New("protected header is not base64url without padding")
	}
	return decodeHeader(raw)
}

func decodeHeader(raw []byte) (*header, error) {
	members, err := scanMembers(strictjson.JOSE, raw)
	if err != nil {
		return nil, fmt.Errorf("protected header: %w", err)
	}
	if members == nil {
		return nil, fmt.Errorf("protected header: %w", errNotObject)
	}
	h := &header{}
	for _, m := range members {
		v := raw[m.valueStart:m.valueEnd]
		var err error
		switch m.key {
		case "alg":
			h.hasAlg = true
			err = jsonString(v, &h.alg)
		case "typ":
			h.hasTyp = true
			err = jsonString(v, &h.typ)
		case "kid":
			h.hasKid = true
			err = jsonString(v, &h.kid)
		case "x5c":
			h.hasX5C = true
			h.x5c, err = decodeX5C(v)
		case "x5t#S256":
			h.hasX5TS256 = true
			var s string
			if err = jsonString(v, &s); err == nil {
				h.x5tS256, err = b64url.DecodeString(s)
				if err != nil || len(h.x5tS256) != 32 {
					err = errors.New("not a base64url SHA-256 thumbprint")
				}
			}
		case "iat":
			h.hasIAT = true
			h.iat, err = numericDate(v)
		case "exp":
			h.hasExp = true
			h.exp, err = numericDate(v)
		case "crit":
			h.hasCrit = true
		case "jku":
			h.hasJKU = true
		case "x5u":
			h.hasX5U = true
		case "b64":
			var b bool
			if err = json.Unmarshal(v, &b); err == nil && !b {
				h.b64False = true
			}
		}
		if err != nil {
			return nil, fmt.Errorf("protected header parameter %q: %w", m.key, err)
		}
	}
	return h, nil
}

func jsonString(v []byte, out *string) error {
	s, err := jsonStringValue(v)
	*out = s
	return err
}

// numericDate accepts a JSON integer of seconds since the epoch. RFC 7519
// allows fractions; no signer we know of writes them, and refusing them keeps
// comparisons exact.
// maxNumericDate is the last second of year 9999; it also keeps the
// freshness arithmetic far from overflow.
const maxNumericDate = 253402300799

func numericDate(v []byte) (int64, error) {
	if bytes.ContainsAny(v, ".eE") {
		return 0, errors.New("not an integer NumericDate")
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n < 0 || n > maxNumericDate {
		return 0, errors.New("not an integer NumericDate between 1970 and 9999")
	}
	return n, nil
}

func decodeX5C(v []byte) ([][]byte, error) {
	if len(v) == 0 || v[0] != '[' {
		return nil, errors.New("not an array")
	}
	spans, err := arrayElements(v)
	if err != nil {
		return nil, errors.New("not an array")
	}
	if len(spans) == 0 {
		return nil, errors.New("empty certificate chain")
	}
	if len(spans) > maxX5C {
		return nil, fmt.Errorf("%d certificates, more than %d", len(spans), maxX5C)
	}
	entries := make([]string, len(spans))
	for i, sp := range spans {
		if entries[i], err = jsonStringValue(v[sp[0]:sp[1]]); err != nil {
			return nil, errors.New("not an array of strings")
		}
	}
	out := make([][]byte, len(entries))
	for i, e := range entries {
		if len(e) > base64.StdEncoding.EncodedLen(maxCertSize) {
			return nil, fmt.Errorf("certificate %d is larger than %d bytes", i, maxCertSize)
		}
		der, err := b64std.DecodeString(e)
		if err != nil {
			return nil, fmt.Errorf("certificate %d is not standard base64", i)
		}
		out[i] = der
	}
	return out, nil
}
