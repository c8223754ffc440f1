package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/exampleserver"
	"github.com/agentid/agentid/policy"
	"github.com/agentid/agentid/proxy"
)

// Relay enforces a policy between a client and a server given as streams;
// here the server is agentid's built-in example server, in process.
func ExampleProxy_Relay() {
	p, _, err := policy.Parse([]byte(`apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: example}
spec:
  allowed_tools: [echo]
`))
	if err != nil {
		panic(err)
	}
	compiled, err := enforce.Compile(p, enforce.LoadOptions{})
	if err != nil {
		panic(err)
	}
	core, err := enforce.New(enforce.Config{Policy: compiled})
	if err != nil {
		panic(err)
	}
	defer core.Close()
	px := proxy.New(proxy.Config{Core: core})

	clientR, clientW := io.Pipe()   // client → proxy
	answersR, answersW := io.Pipe() // proxy → client
	serverInR, serverInW := io.Pipe()
	serverOutR, serverOutW := io.Pipe()
	go func() {
		_ = exampleserver.Serve(context.Background(), serverInR, serverOutW)
		serverOutW.Close()
	}()
	go func() {
		_ = px.Relay(context.Background(), clientR, answersW, serverInW, serverOutR)
		answersW.Close()
	}()

	answers := bufio.NewScanner(answersR)
	for _, line := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_file","arguments":{"path":"/"}}}`,
	} {
		fmt.Fprintln(clientW, line)
		answers.Scan()
		fmt.Println(answers.Text())
	}
	clientW.Close()
	// Output:
	// {"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello"}],"structuredContent":{"text":"hello"}}}
	// {"jsonrpc":"2.0","id":2,"error":{"code":-32001,"message":"Forbidden","data":{"aip_error":"forbidden","reason":"Tool not in allowed_tools list","tool":"delete_file"}}}
}
