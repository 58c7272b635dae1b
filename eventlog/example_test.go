package eventlog_test

import (
	"fmt"

	"github.com/tdproof/tdproof/eventlog"
)

func ExampleReplay() {
	events, err := eventlog.ParseJSON([]byte(`[
		{"imr":3,"event_type":134217729,"digest":"","event":"system-preparing","event_payload":""},
		{"imr":3,"event_type":134217729,"digest":"","event":"compose-hash","event_payload":"abcd","version":2}
	]`))
	if err != nil {
		panic(err)
	}
	rtmrs, err := eventlog.Replay(events)
	if err != nil {
		panic(err)
	}
	fmt.Printf("RTMR3 %x\n", rtmrs[3])
	for _, e := range events {
		fmt.Println(e.Describe())
	}
	// Output:
	// RTMR3 64a3f7b4934c97ec846e542f7e6c2f72b997c615a3534266848e22da309072020769cc17b26b794dc6fd57333386b757
	// runtime event "system-preparing", 0-byte payload
	// runtime event "compose-hash", 2-byte payload: abcd
}

func ExampleRuntimeDigest() {
	d, err := eventlog.RuntimeDigest("compose-hash", []byte{0xab, 0xcd}, 2)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%x\n", d)
	// Output: 9dde1673f544faa94b921825209593ddde08d0baf9cd6990175dffaf3081f1bb10311d56de189491feb33842a050ad7b
}
