package exampleserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// tool is one entry of tools/list.
type tool struct {
	Name         string         `json:"name"`
	Description  string         `json:"description"`
	InputSchema  map[string]any `json:"inputSchema"`
	OutputSchema map[string]any `json:"outputSchema,omitempty"`
	Annotations  map[string]any `json:"annotations,omitempty"`
}

// objectSchema builds the JSON Schema of an object whose properties are all
// required strings, which is every tool's input here. props alternates
// property names and descriptions.
func objectSchema(props ...string) map[string]any {
	properties := map[string]any{}
	required := []string{}
	for i := 0; i+1 < len(props); i += 2 {
		properties[props[i]] = map[string]any{"type": "string", "description": props[i+1]}
		required = append(required, props[i])
	}
	return map[string]any{
		"type":                 "object",
		"properties":           properties,
		"required":             required,
		"additionalProperties": false,
	}
}

func hints(readOnly, destructive bool) map[string]any {
	return map[string]any{"readOnlyHint": readOnly, "destructiveHint": destructive}
}

var toolList = []tool{
	{
		Name:        "read_file",
		Description: "Read a text file.",
		InputSchema: objectSchema("path", "File to read; relative paths start in /home/demo/project, ~ is /home/demo."),
		Annotations: hints(true, false),
	},
	{
		Name:        "list_directory",
		Description: "List the entries of a directory.",
		InputSchema: objectSchema("path", "Directory to list."),
		Annotations: hints(true, false),
	},
	{
		Name:        "write_file",
		Description: "Create or replace a text file, creating missing parent directories.",
		InputSchema: objectSchema("path", "File to write.", "content", "New content of the file."),
		Annotations: hints(false, true),
	},
	{
		Name:        "delete_file",
		Description: "Delete a file.",
		InputSchema: objectSchema("path", "File to delete."),
		Annotations: hints(false, true),
	},
	{
		Name:        "run_command",
		Description: "Pretend to run a shell command: nothing is executed, the result says what would have run.",
		InputSchema: objectSchema("command", "Shell command line."),
		Annotations: hints(false, true),
	},
	{
		Name:         "echo",
		Description:  "Return the text it is given, also as structured content.",
		InputSchema:  objectSchema("text", "Text to echo."),
		OutputSchema: objectSchema("text", "The text that was given."),
		Annotations:  hints(true, false),
	},
}

// toolResult is an MCP CallToolResult.
type toolResult struct {
	Content           []textContent `json:"content"`
	StructuredContent any           `json:"structuredContent,omitempty"`
	IsError           bool          `json:"isError,omitempty"`
}

type textContent struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

func textResult(text string) toolResult {
	return toolResult{Content: []textContent{{Type: "text", Text: text}}}
}

// errorResult reports a failure of the tool itself. MCP puts such failures
// in the result, with isError, so that the model can see and react to them;
// JSON-RPC errors are for requests the server could not even attempt.
func errorResult(format string, args ...any) toolResult {
	r := textResult(fmt.Sprintf(format, args...))
	r.IsError = true
	return r
}

func (s *server) callTool(params json.RawMessage) (any, *rpcError) {
	var p struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	}
	if err := json.Unmarshal(params, &p); err != nil || p.Name == "" {
		return nil, &rpcError{codeInvalidParams, "invalid params: tools/call needs a name"}
	}
	var t *tool
	for i := range toolList {
		if toolList[i].Name == p.Name {
			t = &toolList[i]
		}
	}
	if t == nil {
		return nil, &rpcError{codeInvalidParams, "unknown tool: " + p.Name}
	}
	args, err := stringArgs(p.Arguments, t.InputSchema["required"].([]string))
	if err != nil {
		return nil, &rpcError{codeInvalidParams, fmt.Sprintf("invalid arguments for %s: %v", p.Name, err)}
	}
	return s.run(p.Name, args), nil
}

// stringArgs decodes a tool's arguments, which must be an object holding
// exactly the named string fields. Being strict here lets a proxy test tell
// whether arguments reached the server unchanged.
func stringArgs(raw json.RawMessage, names []string) (map[string]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		raw = json.RawMessage("{}")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("arguments must be an object")
	}
	args := make(map[string]string, len(names))
	for _, name := range names {
		v, ok := m[name]
		if !ok {
			return nil, fmt.Errorf("missing %q", name)
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			return nil, fmt.Errorf("%q must be a string", name)
		}
		args[name] = s
		delete(m, name)
	}
	for name := range m {
		return nil, fmt.Errorf("unexpected argument %q", name)
	}
	return args, nil
}

func (s *server) run(name string, args map[string]string) toolResult {
	switch name {
	case "read_file":
		content, err := s.fs.read(args["path"])
		if err != nil {
			return errorResult("read_file %s: %v", args["path"], err)
		}
		return textResult(content)
	case "list_directory":
		entries, err := s.fs.list(args["path"])
		if err != nil {
			return errorResult("list_directory %s: %v", args["path"], err)
		}
		var b strings.Builder
		for _, e := range entries {
			kind := "[FILE]"
			if e.isDir {
				kind = "[DIR]"
			}
			fmt.Fprintf(&b, "%s %s\n", kind, e.name)
		}
		return textResult(b.String())
	case "write_file":
		if err := s.fs.write(args["path"], args["content"]); err != nil {
			return errorResult("write_file %s: %v", args["path"], err)
		}
		return textResult(fmt.Sprintf("wrote %d bytes to %s", len(args["content"]), resolve(args["path"])))
	case "delete_file":
		if err := s.fs.remove(args["path"]); err != nil {
			return errorResult("delete_file %s: %v", args["path"], err)
		}
		return textResult("deleted " + resolve(args["path"]))
	case "run_command":
		return textResult("simulated: " + args["command"])
	case "echo":
		r := textResult(args["text"])
		r.StructuredContent = map[string]string{"text": args["text"]}
		return r
	}
	// toolList and run disagree: a bug in this package, not in the request.
	return errorResult("tool %s is listed but not implemented", name)
}
