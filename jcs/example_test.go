package jcs_test

import (
	"fmt"

	"github.com/tdproof/tdproof/jcs"
)

func ExampleCanonicalize() {
	out, err := jcs.Canonicalize([]byte(`{ "type": 134217729, "payload": "abcd", "name": "compose-hash", "n": 1.50E+2 }`))
	if err != nil {
		panic(err)
	}
	fmt.Println(string(out))
	// Output: {"n":150,"name":"compose-hash","payload":"abcd","type":134217729}
}

func ExampleMarshal() {
	out, err := jcs.Marshal(map[string]any{"z": []int{3, 1}, "a": "<tag>"})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(out))
	// Output: {"a":"<tag>","z":[3,1]}
}
