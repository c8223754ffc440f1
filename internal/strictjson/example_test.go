package strictjson_test

import (
	"fmt"

	"github.com/agentid/agentid/internal/strictjson"
)

func ExampleValidate() {
	for _, doc := range []string{
		`{"name":"read_file","arguments":{"path":"/tmp/x"}}`,
		`{"name":"read_file","Name":"delete_files"}`,
		`{"s":"\ud800"}`,
		`{"n":9007199254740993}`,
	} {
		fmt.Printf("%-48s MCP: %v\n", doc, strictjson.Validate(strictjson.MCP, []byte(doc)))
		fmt.Printf("%-48s AgentCard: %v\n", "", strictjson.Validate(strictjson.AgentCard, []byte(doc)))
	}
	// Output:
	// {"name":"read_file","arguments":{"path":"/tmp/x"}} MCP: <nil>
	//                                                  AgentCard: <nil>
	// {"name":"read_file","Name":"delete_files"}       MCP: strictjson: duplicate key (keys must differ in more than letter case) at offset 20
	//                                                  AgentCard: strictjson: duplicate key (keys must differ in more than letter case) at offset 20
	// {"s":"\ud800"}                                   MCP: strictjson: unpaired surrogate escape in a string at offset 6
	//                                                  AgentCard: strictjson: unpaired surrogate escape in a string at offset 6
	// {"n":9007199254740993}                           MCP: <nil>
	//                                                  AgentCard: strictjson: integer beyond 2^53 in magnitude at offset 5
}

// A Scanner walks the tokens of a document, validating as it goes.
func ExampleScanner() {
	s := strictjson.NewScanner(strictjson.MCP, []byte(`{"path":"/tmp/x","mode":420,"tags":["a"]}`))
	defer s.Release()
	for {
		tok, err := s.Next()
		if err != nil {
			fmt.Println(err)
			return
		}
		if tok.Kind == strictjson.EOF {
			break
		}
		fmt.Printf("%-13s %s\n", tok.Kind, s.Data()[tok.Start:tok.End])
	}
	// Output:
	// object        {
	// key           "path"
	// string        "/tmp/x"
	// key           "mode"
	// number        420
	// key           "tags"
	// array         [
	// string        "a"
	// end of array  ]
	// end of object }
}

// Member reads an object member by member, each value whole, which is how
// the packages above find the members they act on without building a map.
func ExampleScanner_Member() {
	data := []byte(`{"name":"read_file","arguments":{"path":"/tmp/x"},"_meta":{}}`)
	s := strictjson.NewScanner(strictjson.MCP, data)
	defer s.Release()
	if tok, err := s.Next(); err != nil || tok.Kind != strictjson.Object {
		fmt.Println("not an object")
		return
	}
	for {
		key, val, ok, err := s.Member()
		if err != nil {
			fmt.Println(err)
			return
		}
		if !ok {
			break
		}
		fmt.Printf("%s: %s (%s)\n", s.Text(key), data[val.Start:val.End], val.Kind)
	}
	// Finish checks the rest and reports the first refusal, if any.
	fmt.Println(s.Finish())
	// Output:
	// name: "read_file" (string)
	// arguments: {"path":"/tmp/x"} (object)
	// _meta: {} (object)
	// <nil>
}

func ExampleAppendCompact() {
	v := []byte("{ \"a\" : [ 1, 2 ],\n  \"b\" : \"x y\" }")
	if strictjson.Validate(strictjson.MCP, v) == nil {
		fmt.Printf("%s\n", strictjson.AppendCompact(nil, v))
	}
	// Output: {"a":[1,2],"b":"x y"}
}
