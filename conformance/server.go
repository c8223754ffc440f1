package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/policy"
	"github.com/agentid/agentid/server"
)

// deviations are the server vectors that contradict the spec. The runner
// runs them as written and reports them failed, with the reason; they do
// not make `agentid conformance` exit non-zero (docs/decisions.md).
var deviations = map[string]string{
	"auth-011": "the vector expects a token in the request body to be accepted; spec §6.2.1 says implementations MUST NOT accept tokens in the body (DESIGN decision 11)",
	"auth-030": "the vector expects policy_changed for another policy's token; spec §5.4.3 checks the audience before the policy hash, so the answer is audience_mismatch (reference/aip.md §6 #25)",
}

// serverVector is a vector of the server level: HTTP requests to a
// validation server running the vector's policy.
type serverVector struct {
	ID             string         `json:"id"`
	Description    string         `json:"description"`
	Note           string         `json:"note"`
	Policy         *string        `json:"policy"`
	PolicySequence []namedPolicy  `json:"policy_sequence"`
	Setup          []serverStep   `json:"setup"`
	Steps          []serverStep   `json:"steps"`
	HTTPRequest    *httpRequest   `json:"http_request"`
	Expected       *httpExpected  `json:"expected"`
	Tests          []httpExchange `json:"tests"`
	Sequence       []httpExchange `json:"sequence"`
}

type httpRequest struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	// Body is a JSON value sent as JSON, or a string sent as it is.
	Body json.RawMessage `json:"body"`
	// Port selects the server whose policy listens on that port.
	Port int `json:"port"`
}

type httpExpected struct {
	HTTPStatus   int                        `json:"http_status"`
	Body         map[string]json.RawMessage `json:"body"`
	ContentType  string                     `json:"content_type"`
	BodyContains []string                   `json:"body_contains"`
}

type httpExchange struct {
	HTTPRequest *httpRequest  `json:"http_request"`
	Expected    *httpExpected `json:"expected"`
}

type serverStep struct {
	Action      string            `json:"action"`
	Capture     map[string]string `json:"capture"`
	Duration    string            `json:"duration"`
	Policy      string            `json:"policy"`
	HTTPRequest *httpRequest      `json:"http_request"`
	Expected    *httpExpected     `json:"expected"`
}

// fleet is the validation servers of one vector, sharing a key set and
// a clock, as replicas of one deployment would.
type fleet struct {
	dir     string
	clock   *identityClock
	keys    *identity.KeySet
	admin   string
	byPort  map[int]*liveServer
	current *liveServer
	vars    map[string]string
	f       *findings
}

// liveServer is a validation server listening on a loopback port: the code
// of `agentid serve` (server.New and server.Serve) with a real listener.
type liveServer struct {
	srv  *server.Server
	addr string
	stop func()
}

func runServerVector(ctx context.Context, raw json.RawMessage) outcome {
	ctx, cancel := context.WithTimeout(ctx, vectorTimeout)
	defer cancel()
	var v serverVector
	if err := decodeStrict(raw, &v, ""); err != nil {
		return failed("vector: %v", err)
	}
	fl, err := newFleet()
	if err != nil {
		return failed("runner: %v", err)
	}
	defer fl.close()
	f := fl.f
	named := map[string]string{}
	for _, p := range v.PolicySequence {
		named[p.Name] = p.Content
	}
	if v.Policy != nil {
		if err := fl.start(*v.Policy); err != nil {
			return failed("%v", err)
		}
	}
	steps := append(append([]serverStep(nil), v.Setup...), v.Steps...)
	for i, st := range steps {
		where := fmt.Sprintf("step %d: ", i+1)
		switch {
		case st.HTTPRequest != nil:
			fl.exchange(ctx, where, st.HTTPRequest, st.Expected)
		case st.Action == "load_policy":
			doc, ok := named[st.Policy]
			if !ok {
				return failed("%sno policy named %q", where, st.Policy)
			}
			if err := fl.start(doc); err != nil {
				return failed("%s%v", where, err)
			}
		case st.Action == "get_valid_token":
			tok, err := fl.token(ctx)
			if err != nil {
				return failed("%s%v", where, err)
			}
			for _, name := range st.Capture {
				fl.vars[name] = tok
			}
		case st.Action == "wait":
			d, err := policy.ParseDuration(st.Duration)
			if err != nil || d <= 0 {
				return failed("%swait: duration %q", where, st.Duration)
			}
			// The servers run on the vector's clock: waiting moves it, and
			// the vector is checked exactly as written, without a sleep.
			fl.clock.advance(d)
		default:
			return failed("%sunknown action %q", where, st.Action)
		}
	}
	if v.HTTPRequest != nil {
		fl.exchange(ctx, "", v.HTTPRequest, v.Expected)
	}
	for i, ex := range v.Tests {
		fl.exchange(ctx, fmt.Sprintf("tests[%d]: ", i), ex.HTTPRequest, ex.Expected)
	}
	for i, ex := range v.Sequence {
		fl.exchange(ctx, fmt.Sprintf("sequence[%d]: ", i), ex.HTTPRequest, ex.Expected)
	}
	o := f.outcome()
	if why, ok := deviations[v.ID]; ok && o.status == Fail {
		o.deviation = why
	}
	return o
}

func newFleet() (*fleet, error) {
	dir, err := os.MkdirTemp("", "agentid-conformance-*")
	if err != nil {
		return nil, err
	}
	clock := &identityClock{now: time.Now().UTC()}
	keys, err := identity.GenerateKeySet(identity.DefaultAlg, identity.KeySetOptions{Now: clock.Now})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	var b [16]byte
	rand.Read(b[:])
	return &fleet{dir: dir, clock: clock, keys: keys, admin: hex.EncodeToString(b[:]),
		byPort: map[int]*liveServer{}, vars: map[string]string{}, f: &findings{}}, nil
}

func (fl *fleet) close() {
	for _, s := range fl.byPort {
		s.stop()
	}
	os.RemoveAll(fl.dir)
}

// start runs a server for the policy document on a free loopback port,
// standing for the port its server.listen names.
func (fl *fleet) start(doc string) error {
	path := filepath.Join(fl.dir, fmt.Sprintf("policy-%d.yaml", len(fl.byPort)))
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		return err
	}
	p, err := enforce.Load(path, enforce.LoadOptions{HomeDir: "/home/conformance", WorkDir: "/home/conformance"})
	if err != nil {
		return fmt.Errorf("policy does not load: %w", err)
	}
	_, portText, _ := net.SplitHostPort(p.Policy.ServerConfig().Listen)
	port, _ := strconv.Atoi(portText)
	srv, err := server.New(server.Config{Policies: []*enforce.Policy{p}, Keys: fl.keys, AdminToken: []byte(fl.admin),
		Audit: audit.Discard(), Now: fl.clock.Now})
	if err != nil {
		return err
	}
	ready := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Serve(ctx, srv, server.Listener{Addr: "127.0.0.1:0", ShutdownTimeout: 2 * time.Second,
			Ready: func(a net.Addr) { ready <- a }})
	}()
	var addr string
	select {
	case a := <-ready:
		addr = a.String()
	case err := <-done:
		cancel()
		srv.Close()
		return fmt.Errorf("server: %v", err)
	}
	ls := &liveServer{srv: srv, addr: addr, stop: func() { cancel(); <-done; srv.Close() }}
	if old, ok := fl.byPort[port]; ok {
		old.stop()
	}
	fl.byPort[port] = ls
	fl.current = ls
	return nil
}

// token obtains a token from the current server, as a remote agent does
// (POST /v1/token with the admin credential).
func (fl *fleet) token(ctx context.Context) (string, error) {
	if fl.current == nil {
		return "", fmt.Errorf("get_valid_token: no server is running")
	}
	host, _ := os.Hostname()
	body := fmt.Sprintf(`{"binding":{"process_id":%d,"hostname":%q,"policy_path":"/home/conformance/agent.yaml"}}`, os.Getpid(), host)
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+fl.current.addr+server.TokenPath, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+fl.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		Token string `json:"token"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(raw, &out) != nil || out.Token == "" {
		return "", fmt.Errorf("get_valid_token: %d %s", resp.StatusCode, raw)
	}
	return out.Token, nil
}

// substitute replaces ${VAR} with a captured token; a variable never
// captured (VALID_TOKEN) is a fresh token of the current server.
func (fl *fleet) substitute(ctx context.Context, s string) (string, error) {
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			return s, nil
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return s, nil
		}
		name := s[i+2 : i+j]
		val, ok := fl.vars[name]
		if !ok {
			tok, err := fl.token(ctx)
			if err != nil {
				return "", err
			}
			fl.vars[name], val = tok, tok
			fl.f.define("${" + name + "} is a fresh token from /v1/token")
		}
		s = s[:i] + val + s[i+j+1:]
	}
}

// exchange sends one request and compares the answer with exp.
func (fl *fleet) exchange(ctx context.Context, where string, rq *httpRequest, exp *httpExpected) {
	f := fl.f
	if rq == nil || exp == nil {
		f.fail("%sa request without expectations, or expectations without a request", where)
		return
	}
	target := fl.current
	if rq.Port != 0 {
		target = fl.byPort[rq.Port]
	}
	if target == nil {
		f.fail("%sno server listens on port %d", where, rq.Port)
		return
	}
	var body io.Reader
	if len(rq.Body) > 0 {
		text := string(rq.Body)
		var s string
		if json.Unmarshal(rq.Body, &s) == nil {
			text = s // a string body is sent as it is
		}
		sub, err := fl.substitute(ctx, text)
		if err != nil {
			f.fail("%s%v", where, err)
			return
		}
		body = strings.NewReader(sub)
	}
	req, err := http.NewRequestWithContext(ctx, rq.Method, "http://"+target.addr+rq.Path, body)
	if err != nil {
		f.fail("%srequest: %v", where, err)
		return
	}
	if body != nil {
		// As any HTTP client library sends a JSON body.
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range rq.Headers {
		sub, err := fl.substitute(ctx, v)
		if err != nil {
			f.fail("%s%v", where, err)
			return
		}
		req.Header.Set(k, sub)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.fail("%s%v", where, err)
		return
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, p := range compareHTTP(exp, resp, raw) {
		f.fail("%s%s", where, p)
	}
	f.checked++
}

// compareHTTP lists how the answer differs from the expectation. Body
// expectations are a subset: members not named are not compared. A string
// ">0", ">=0" or "!null" compares a number or asserts presence;
// "<member>_length: N" compares the length of a string member.
func compareHTTP(exp *httpExpected, resp *http.Response, raw []byte) []string {
	var problems []string
	if exp.HTTPStatus != 0 && resp.StatusCode != exp.HTTPStatus {
		problems = append(problems, fmt.Sprintf("HTTP status %d, want %d (body %s)", resp.StatusCode, exp.HTTPStatus, bytes.TrimSpace(raw)))
	}
	if exp.ContentType != "" && !strings.HasPrefix(resp.Header.Get("Content-Type"), exp.ContentType) {
		problems = append(problems, fmt.Sprintf("Content-Type %q, want %s", resp.Header.Get("Content-Type"), exp.ContentType))
	}
	for _, s := range exp.BodyContains {
		if !bytes.Contains(raw, []byte(s)) {
			problems = append(problems, fmt.Sprintf("body lacks %q", s))
		}
	}
	if len(exp.Body) == 0 {
		return problems
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		return append(problems, fmt.Sprintf("body is not a JSON object: %s", bytes.TrimSpace(raw)))
	}
	for _, k := range sortedKeys(exp.Body) {
		var want any
		if err := json.Unmarshal(exp.Body[k], &want); err != nil {
			problems = append(problems, fmt.Sprintf("body.%s: expectation: %v", k, err))
			continue
		}
		if member, ok := strings.CutSuffix(k, "_length"); ok {
			if _, present := got[k]; !present {
				s, _ := got[member].(string)
				if n, _ := want.(float64); len(s) != int(n) {
					problems = append(problems, fmt.Sprintf("body.%s has length %d, want %v", member, len(s), want))
				}
				continue
			}
		}
		if p := matchValue(want, got[k], "body."+k); p != "" {
			problems = append(problems, p)
		}
	}
	return problems
}

func matchValue(want, got any, path string) string {
	switch w := want.(type) {
	case string:
		if op, ok := comparison(w); ok {
			return op(got, path)
		}
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s is %v, want an object", path, got)
		}
		for _, k := range sortedKeys(w) {
			if p := matchValue(w[k], g[k], path+"."+k); p != "" {
				return p
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) < len(w) {
			return fmt.Sprintf("%s is %v, want at least %d elements like %v", path, got, len(w), w)
		}
		for i := range w {
			if p := matchValue(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p
			}
		}
		return ""
	}
	if !reflect.DeepEqual(want, got) {
		return fmt.Sprintf("%s is %v, want %v", path, got, want)
	}
	return ""
}

// comparison interprets the vectors' ">0", ">=0" and "!null" strings.
func comparison(w string) (func(got any, path string) string, bool) {
	if w == "!null" {
		return func(got any, path string) string {
			if got == nil {
				return path + " is absent or null"
			}
			return ""
		}, true
	}
	for _, op := range []string{">=", ">"} {
		rest, ok := strings.CutPrefix(w, op)
		if !ok {
			continue
		}
		n, err := strconv.ParseFloat(rest, 64)
		if err != nil {
			return nil, false
		}
		return func(got any, path string) string {
			g, ok := got.(float64)
			if !ok || (op == ">" && !(g > n)) || (op == ">=" && !(g >= n)) {
				return fmt.Sprintf("%s is %v, want %s", path, got, w)
			}
			return ""
		}, true
	}
	return nil, false
}
