package exampleserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// ProtocolVersion is the MCP protocol revision the server prefers.
const ProtocolVersion = "2025-06-18"

// knownVersions are the revisions whose stdio framing and tool results this
// server's messages satisfy. A client asking for one of them gets it back;
// any other request is answered with ProtocolVersion, as the MCP lifecycle
// prescribes, and the client decides whether to continue.
var knownVersions = map[string]bool{
	"2024-11-05": true,
	"2025-03-26": true,
	"2025-06-18": true,
}

// MaxLineSize caps one incoming message. Longer lines are discarded and
// answered with a parse error instead of growing memory without bound.
const MaxLineSize = 16 << 20

// JSON-RPC 2.0 error codes.
const (
	codeParseError     = -32700
	codeInvalidRequest = -32600
	codeMethodNotFound = -32601
	codeInvalidParams  = -32602
)

// Serve answers MCP messages read from in on out until in reaches EOF (nil
// is returned) or ctx is done (ctx.Err() is returned). Each Serve has its own
// freshly seeded file system, so concurrent or repeated sessions never see
// each other's writes.
//
// A read from in cannot be interrupted, so when ctx ends first the
// goroutine reading in lingers until its pending read returns; closing in
// releases it.
func Serve(ctx context.Context, in io.Reader, out io.Writer) error {
	s := &server{fs: newFS(), out: out}
	lines := make(chan line)
	done := make(chan struct{})
	defer close(done)
	go readLines(in, lines, done)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case l, ok := <-lines:
			if !ok {
				return nil
			}
			if l.err != nil {
				return l.err
			}
			if err := s.handle(l); err != nil {
				return err
			}
		}
	}
}

// Main serves os.Stdin and os.Stdout and returns the process exit code. It
// backs the hidden `agentid example-server` command.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := Serve(ctx, os.Stdin, os.Stdout)
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "example-server:", err)
		return 1
	}
	return 0
}

// line is one framed message, or the reason framing stopped.
type line struct {
	data    []byte
	tooLong bool
	err     error
}

// readLines splits in into newline-terminated messages and sends them on
// lines, closing it at EOF. A final line without a newline still counts.
func readLines(in io.Reader, lines chan<- line, done <-chan struct{}) {
	defer close(lines)
	send := func(l line) bool {
		select {
		case lines <- l:
			return true
		case <-done:
			return false
		}
	}
	r := bufio.NewReaderSize(in, 64<<10)
	for {
		var buf []byte
		tooLong := false
		for {
			chunk, err := r.ReadSlice('\n')
			if !tooLong {
				if len(buf)+len(chunk) > MaxLineSize+1 { // +1 for the newline
					tooLong, buf = true, nil
				} else {
					buf = append(buf, chunk...)
				}
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == io.EOF {
				if len(buf) > 0 || tooLong {
					if !send(line{data: buf, tooLong: tooLong}) {
						return
					}
				}
				return
			}
			if err != nil {
				send(line{err: err})
				return
			}
			break
		}
		if !send(line{data: buf, tooLong: tooLong}) {
			return
		}
	}
}

type server struct {
	fs  *memFS
	out io.Writer
}

// request is the subset of a JSON-RPC message the server looks at. ID stays
// raw so that the response echoes the client's id exactly as a value.
type request struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  *string         `json:"method"`
	Params  json.RawMessage `json:"params"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

var nullID = json.RawMessage("null")

func (s *server) handle(l line) error {
	if l.tooLong {
		return s.sendError(nullID, codeParseError, fmt.Sprintf("message longer than %d bytes", MaxLineSize))
	}
	data := bytes.TrimSpace(l.data)
	if len(data) == 0 {
		return nil // blank lines carry no message
	}
	if !json.Valid(data) {
		return s.sendError(nullID, codeParseError, "parse error")
	}
	if data[0] != '{' {
		// A batch or a bare value. MCP dropped batches in 2025-06-18.
		return s.sendError(nullID, codeInvalidRequest, "invalid request: not a single JSON object")
	}
	var req request
	if err := json.Unmarshal(data, &req); err != nil {
		// Valid JSON of the wrong shape, such as a numeric method.
		return s.sendError(idOrNull(req.ID), codeInvalidRequest, "invalid request: "+err.Error())
	}
	if req.ID != nil && !validID(req.ID) {
		return s.sendError(nullID, codeInvalidRequest, "invalid request: id must be a string or a number")
	}
	if req.JSONRPC != "2.0" {
		return s.reply(req, nil, &rpcError{codeInvalidRequest, `invalid request: jsonrpc must be "2.0"`})
	}
	if req.Method == nil {
		// A response from the client. This server never sends requests,
		// so there is nothing it could answer.
		return nil
	}
	result, rerr := s.dispatch(*req.Method, req.Params)
	return s.reply(req, result, rerr)
}

// reply answers req unless it is a notification, which never gets a
// response, not even an error.
func (s *server) reply(req request, result any, rerr *rpcError) error {
	if req.ID == nil {
		return nil
	}
	if rerr != nil {
		return s.sendError(req.ID, rerr.Code, rerr.Message)
	}
	if result == nil {
		// A request for something that has no result (a notification's
		// method sent with an id) still gets one: JSON-RPC requires it.
		result = struct{}{}
	}
	return s.send(response{JSONRPC: "2.0", ID: req.ID, Result: result})
}

func (s *server) sendError(id json.RawMessage, code int, msg string) error {
	return s.send(response{JSONRPC: "2.0", ID: id, Error: &rpcError{code, msg}})
}

// send writes one message as a single line in a single Write, so that a
// reader on the other end never sees a partial message between lines.
func (s *server) send(r response) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = s.out.Write(append(data, '\n'))
	return err
}

// validID reports whether raw is a JSON string or number. MCP forbids null
// ids; objects, arrays and booleans are not ids in JSON-RPC at all.
func validID(raw json.RawMessage) bool {
	switch raw[0] {
	case '"', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return true
	}
	return false
}

func idOrNull(raw json.RawMessage) json.RawMessage {
	if raw != nil && validID(raw) {
		return raw
	}
	return nullID
}

func (s *server) dispatch(method string, params json.RawMessage) (any, *rpcError) {
	switch method {
	case "initialize":
		return initialize(params)
	case "ping":
		return struct{}{}, nil
	case "tools/list":
		return map[string]any{"tools": toolList}, nil
	case "tools/call":
		return s.callTool(params)
	case "notifications/initialized", "notifications/cancelled":
		// Notifications the server accepts and has nothing to do for.
		return nil, nil
	}
	return nil, &rpcError{codeMethodNotFound, "method not found: " + method}
}

func initialize(params json.RawMessage) (any, *rpcError) {
	var p struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if len(params) > 0 && string(params) != "null" {
		if err := json.Unmarshal(params, &p); err != nil {
			return nil, &rpcError{codeInvalidParams, "invalid initialize params: " + err.Error()}
		}
	}
	version := ProtocolVersion
	if knownVersions[p.ProtocolVersion] {
		version = p.ProtocolVersion
	}
	return map[string]any{
		"protocolVersion": version,
		"capabilities": map[string]any{
			"tools": map[string]any{"listChanged": false},
		},
		"serverInfo": map[string]any{
			"name":    "agentid-example-server",
			"version": "1.0.0",
		},
		"instructions": "A demo project in an in-memory file system. Nothing here touches a real disk or runs a real command.",
	}, nil
}
