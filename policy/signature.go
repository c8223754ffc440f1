package policy

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// SignatureAlgEd25519 is the only policy signature algorithm AIP v1alpha2
// defines (§3.3.1).
const SignatureAlgEd25519 = "ed25519"

// Errors of VerifySignature and CheckSignatureFormat. Use errors.Is.
var (
	// ErrSignatureMissing: the policy has no metadata.signature.
	ErrSignatureMissing = errors.New("policy signature missing")
	// ErrSignatureMalformed: metadata.signature is not ed25519:<base64 of 64 bytes>.
	ErrSignatureMalformed = errors.New("policy signature malformed")
	// ErrSignatureInvalid: the signature does not verify with the key.
	ErrSignatureInvalid = errors.New("policy signature invalid")
)

// Sign signs the policy document raw with key and returns the document with
// metadata.signature set to "ed25519:<base64>" (§3.3.1), computed over
// CanonicalJSON(raw) — the canonical form without any previous signature.
//
// For a YAML document whose metadata is a block mapping, the text is kept
// byte for byte except for one line: an existing metadata.signature line is
// replaced, otherwise a line is inserted right after "metadata:". A JSON
// document (first character '{') is re-emitted as indented JSON, since JSON
// has no comments to keep. The result is re-parsed and checked to have the
// same canonical form and to carry the new signature before it is returned.
func Sign(raw []byte, key ed25519.PrivateKey) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("policy: sign: not an Ed25519 private key")
	}
	canon, err := CanonicalJSON(raw)
	if err != nil {
		return nil, err
	}
	value := SignatureAlgEd25519 + ":" + base64.StdEncoding.EncodeToString(ed25519.Sign(key, canon))

	var out []byte
	if t := bytes.TrimLeft(raw, " \t\r\n\ufeff"); len(t) > 0 && t[0] == '{' {
		out, err = signJSON(canon, value)
	} else {
		out, err = signYAML(raw, value)
	}
	if err != nil {
		return nil, err
	}
	// Never hand back a document whose meaning the text edit changed.
	canon2, err := CanonicalJSON(out)
	if err != nil || !bytes.Equal(canon, canon2) {
		return nil, errors.New("policy: sign: inserting the signature would change the document; add metadata.signature by hand")
	}
	if got, err := signatureOf(out); err != nil || got != value {
		return nil, errors.New("policy: sign: the signature could not be inserted; add metadata.signature by hand")
	}
	return out, nil
}

// signJSON re-emits a JSON policy from its canonical form with the signature.
func signJSON(canon []byte, value string) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(canon))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("policy: sign: %w", err)
	}
	md, ok := doc["metadata"].(map[string]any)
	if !ok {
		return nil, errors.New("policy: sign: document has no metadata mapping")
	}
	md["signature"] = value
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("policy: sign: %w", err)
	}
	return buf.Bytes(), nil
}

// signYAML replaces or inserts the signature line in a block-style YAML
// document.
func signYAML(raw []byte, value string) ([]byte, error) {
	nl := "\n"
	if bytes.Contains(raw, []byte("\r\n")) {
		nl = "\r\n"
	}
	lines := strings.SplitAfter(string(raw), "\n")
	mdLine := -1
	for i, l := range lines {
		if isTopLevelKey(l, "metadata") {
			mdLine = i
			break
		}
	}
	if mdLine < 0 {
		return nil, errors.New("policy: sign: no block-style top-level metadata: line; add metadata.signature by hand")
	}
	head := strings.TrimRight(lines[mdLine], "\r\n")
	if rest := strings.TrimSpace(stripComment(head[strings.Index(head, ":")+1:])); rest != "" {
		return nil, errors.New("policy: sign: metadata is not a block mapping; add metadata.signature by hand")
	}
	// The block: following lines that are indented, blank or comments.
	indent := ""
	end := len(lines)
	for i := mdLine + 1; i < len(lines); i++ {
		l := strings.TrimRight(lines[i], "\r\n")
		t := strings.TrimLeft(l, " ")
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if len(l) == len(t) { // back at column 0: end of the block
			end = i
			break
		}
		if indent == "" {
			indent = l[:len(l)-len(t)]
		}
	}
	if indent == "" || strings.ContainsRune(indent, '\t') {
		return nil, errors.New("policy: sign: cannot find the indentation of metadata; add metadata.signature by hand")
	}
	newLine := indent + "signature: \"" + value + "\"" + nl
	for i := mdLine + 1; i < end; i++ {
		l := strings.TrimRight(lines[i], "\r\n")
		if !strings.HasPrefix(l, indent+"signature:") && !strings.HasPrefix(l, indent+`"signature":`) && !strings.HasPrefix(l, indent+"'signature':") {
			continue
		}
		// Replace the line and any continuation lines of its value.
		j := i + 1
		for j < end {
			lj := strings.TrimRight(lines[j], "\r\n")
			tj := strings.TrimLeft(lj, " ")
			if tj != "" && len(lj)-len(tj) <= len(indent) {
				break
			}
			j++
		}
		if !strings.HasSuffix(lines[i], "\n") {
			newLine = strings.TrimSuffix(newLine, nl)
		}
		out := append([]string{}, lines[:i]...)
		out = append(out, newLine)
		out = append(out, lines[j:]...)
		return []byte(strings.Join(out, "")), nil
	}
	mdText := lines[mdLine]
	if !strings.HasSuffix(mdText, "\n") {
		mdText += nl
	}
	out := append([]string{}, lines[:mdLine]...)
	out = append(out, mdText, newLine)
	out = append(out, lines[mdLine+1:]...)
	return []byte(strings.Join(out, "")), nil
}

func isTopLevelKey(line, key string) bool {
	for _, k := range []string{key, `"` + key + `"`, "'" + key + "'"} {
		if strings.HasPrefix(line, k+":") {
			return true
		}
	}
	return false
}

func stripComment(s string) string {
	if i := strings.Index(s, "#"); i >= 0 {
		return s[:i]
	}
	return s
}

// signatureOf returns metadata.signature of a document, "" if absent.
func signatureOf(raw []byte) (string, error) {
	js, err := yamlToJSON(raw)
	if err != nil {
		return "", err
	}
	var doc struct {
		Metadata struct {
			Signature string `json:"signature"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		return "", err
	}
	return doc.Metadata.Signature, nil
}

// decodeSignature parses "ed25519:<base64>" into the 64 signature bytes.
func decodeSignature(s string) ([]byte, error) {
	alg, b64, ok := strings.Cut(s, ":")
	if !ok {
		return nil, fmt.Errorf("%w: want %s:<base64>", ErrSignatureMalformed, SignatureAlgEd25519)
	}
	if alg != SignatureAlgEd25519 {
		return nil, fmt.Errorf("%w: unsupported algorithm %q (only %s)", ErrSignatureMalformed, shortValue(alg), SignatureAlgEd25519)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: bad base64", ErrSignatureMalformed)
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrSignatureMalformed, len(sig), ed25519.SignatureSize)
	}
	return sig, nil
}

// CheckSignatureFormat reports whether p's metadata.signature, when present,
// is well formed. It returns nil for a policy without a signature. A loader
// that has no verification key still refuses a malformed signature with it.
func CheckSignatureFormat(p *Policy) error {
	if p.Metadata.Signature == "" {
		return nil
	}
	_, err := decodeSignature(p.Metadata.Signature)
	return err
}

// VerifySignature verifies p's metadata.signature with pub over the
// canonical form of p.Raw. The error wraps ErrSignatureMissing,
// ErrSignatureMalformed or ErrSignatureInvalid.
func VerifySignature(p *Policy, pub ed25519.PublicKey) error {
	if p.Metadata.Signature == "" {
		return ErrSignatureMissing
	}
	return VerifyRaw(p.Raw, p.Metadata.Signature, pub)
}

// VerifyRaw verifies signature ("ed25519:<base64>") over the canonical form
// of the document raw.
func VerifyRaw(raw []byte, signature string, pub ed25519.PublicKey) error {
	if signature == "" {
		return ErrSignatureMissing
	}
	if len(pub) != ed25519.PublicKeySize {
		return errors.New("policy: verify: not an Ed25519 public key")
	}
	sig, err := decodeSignature(signature)
	if err != nil {
		return err
	}
	canon, err := CanonicalJSON(raw)
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, canon, sig) {
		return ErrSignatureInvalid
	}
	return nil
}

// LoadVerified is Load for a caller that relies on the policy's integrity
// (the proxy, the token commands). With pub, metadata.signature must verify
// with it; without, a signature that is present must still be well formed,
// since a malformed one cannot be anybody's. The error wraps those of
// VerifySignature and CheckSignatureFormat.
func LoadVerified(path string, pub ed25519.PublicKey) (*Policy, []Warning, error) {
	p, warnings, err := Load(path)
	if err != nil {
		return nil, warnings, err
	}
	if pub != nil {
		err = VerifySignature(p, pub)
	} else {
		err = CheckSignatureFormat(p)
	}
	if err != nil {
		return nil, warnings, fmt.Errorf("policy: %s: %w", path, err)
	}
	return p, warnings, nil
}
