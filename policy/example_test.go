package policy_test

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/agentid/agentid/policy"
)

func ExampleEngine_DecideTool() {
	p := &policy.Policy{
		APIVersion: policy.APIVersionV1Alpha2,
		Kind:       policy.KindAgentPolicy,
		Metadata:   policy.Metadata{Name: "example"},
		Spec: policy.Spec{
			AllowedTools:   []string{"read_file"},
			ProtectedPaths: []string{"~/.ssh"},
			ToolRules: []policy.ToolRule{
				{Tool: "fetch", Action: policy.ActionAllow, AllowArgs: map[string]string{"url": `^https://github\.com/`}},
				{Tool: "exec", Action: policy.ActionBlock},
			},
		},
	}
	e, err := policy.NewEngine(p, policy.EngineOptions{HomeDir: "/home/agent", WorkDir: "/srv"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range []struct{ tool, args string }{
		{"read_file", `{"path":"/srv/README.md"}`},
		{"ＲＥＡＤ_FILE", `{"path":"~/.ssh/id_rsa"}`},
		{"fetch", `{"url":"https://evil.example/"}`},
		{"exec", `{"cmd":"ls"}`},
		{"delete_file", `{}`},
	} {
		d := e.DecideTool(policy.ToolCall{Name: c.tool, Arguments: json.RawMessage(c.args)})
		fmt.Println(strings.TrimSpace(fmt.Sprintf("%-11s %-5s %6d %s", d.Tool, d.Action, d.Code, d.Reason)))
	}
	// Output:
	// read_file   ALLOW      0
	// read_file   BLOCK -32007 Access denied: protected path
	// fetch       BLOCK -32001 Argument validation failed
	// exec        BLOCK -32001 Tool blocked by policy
	// delete_file BLOCK -32001 Tool not in allowed_tools list
}

func ExampleStringify() {
	for _, v := range []string{`"text"`, `8080`, `1.0`, `true`, `null`, `{"b":[1,2],"a":"<x>"}`} {
		s, _ := policy.Stringify(json.RawMessage(v))
		fmt.Printf("%q\n", s)
	}
	// Output:
	// "text"
	// "8080"
	// "1"
	// "true"
	// ""
	// "{\"a\":\"<x>\",\"b\":[1,2]}"
}
