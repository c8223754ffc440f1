package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// ParseToolsList extracts tool definitions from a tools/list result
// ({"tools":[...]}), a full JSON-RPC response holding one, or a bare array.
func ParseToolsList(data []byte) ([]json.RawMessage, error) {
	var probe struct {
		Result *struct {
			Tools []json.RawMessage `json:"tools"`
		} `json:"result"`
		Tools []json.RawMessage `json:"tools"`
	}
	if err := json.Unmarshal(data, &probe); err == nil {
		if probe.Result != nil {
			return probe.Result.Tools, nil
		}
		if probe.Tools != nil {
			return probe.Tools, nil
		}
	}
	var tools []json.RawMessage
	if err := json.Unmarshal(data, &tools); err != nil {
		return nil, fmt.Errorf("proxy: not a tools/list result or a tools array")
	}
	return tools, nil
}

// ListTools starts the MCP server c, initializes a session, and returns every
// tool it advertises (following nextCursor pages). The server is stopped
// afterwards.
func ListTools(ctx context.Context, c Command, timeout time.Duration) ([]json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Env, cmd.Dir, cmd.Stderr = c.Env, c.Dir, c.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("proxy: starting MCP server: %w", err)
	}
	defer func() {
		in.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	rd := bufio.NewReaderSize(out, 1<<16)
	id := 0
	call := func(method string, params any) (json.RawMessage, error) {
		id++
		req, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
		if _, err := in.Write(append(req, '\n')); err != nil {
			return nil, err
		}
		for {
			line, err := rd.ReadBytes('\n')
			if err != nil {
				return nil, fmt.Errorf("proxy: reading from MCP server: %w", err)
			}
			var resp struct {
				ID     json.RawMessage `json:"id"`
				Result json.RawMessage `json:"result"`
				Error  *struct {
					Message string `json:"message"`
				} `json:"error"`
			}
			if json.Unmarshal(line, &resp) != nil || string(resp.ID) != strconv.Itoa(id) {
				continue // a notification or a log line: not our answer
			}
			if resp.Error != nil {
				return nil, fmt.Errorf("proxy: %s: %s", method, resp.Error.Message)
			}
			return resp.Result, nil
		}
	}
	if _, err := call("initialize", map[string]any{"protocolVersion": "2025-06-18", "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "agentid", "version": "1"}}); err != nil {
		return nil, err
	}
	note, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"})
	if _, err := in.Write(append(note, '\n')); err != nil {
		return nil, err
	}
	var all []json.RawMessage
	params := map[string]any{}
	for page := 0; page < 1000; page++ {
		res, err := call("tools/list", params)
		if err != nil {
			return nil, err
		}
		var r struct {
			Tools      []json.RawMessage `json:"tools"`
			NextCursor string            `json:"nextCursor"`
		}
		if err := json.Unmarshal(res, &r); err != nil {
			return nil, fmt.Errorf("proxy: tools/list: %w", err)
		}
		all = append(all, r.Tools...)
		if r.NextCursor == "" {
			return all, nil
		}
		params = map[string]any{"cursor": r.NextCursor}
	}
	return nil, fmt.Errorf("proxy: tools/list did not end after 1000 pages")
}
