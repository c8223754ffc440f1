package jsonrpc_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/agentid/agentid/jsonrpc"
)

func ExampleDecode() {
	line := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"notes.txt"}}}`)
	msg, err := jsonrpc.Decode(line)
	if err != nil {
		panic(err)
	}
	call, err := jsonrpc.ParseToolCall(msg.Params)
	if err != nil {
		panic(err)
	}
	fmt.Println(msg.Kind, msg.Method, string(msg.ID), call.Name, string(call.Arguments))

	// A case-variant key that would let a Go parser see a different tool
	// than a Python server is refused, and the answer echoes the id.
	shadowed := []byte(`{"jsonrpc":"2.0","id":"a1","method":"tools/call","params":{"name":"delete_files","Name":"list_files"}}`)
	_, err = jsonrpc.Decode(shadowed)
	var e *jsonrpc.Error
	if errors.As(err, &e) {
		os.Stdout.Write(jsonrpc.AIPError(e.ID, e.Code, nil))
	}
	// Output:
	// request tools/call 7 read_file {"path":"notes.txt"}
	// {"jsonrpc":"2.0","id":"a1","error":{"code":-32600,"message":"Invalid Request"}}
}
