package measure_test

import (
	"encoding/hex"
	"fmt"

	"github.com/tdproof/tdproof/measure"
)

// The TD HOB of the dstack OVMF for 2 GiB of RAM, from the witness a lite
// measurement document carries.
func ExampleParseTDHOBWitness() {
	w, _ := hex.DecodeString("80100904000609020b021010")
	layout, err := measure.ParseTDHOBWitness(w)
	if err != nil {
		panic(err)
	}
	fmt.Printf("TD HOB at %#x\n", layout.Base)
	for _, r := range layout.Accepted {
		fmt.Printf("accepted %#x+%#x\n", r.Start, r.Length)
	}
	d, _ := layout.Digest(2 << 30)
	fmt.Printf("digest %x…\n", d[:8])
	// Output:
	// TD HOB at 0x809000
	// accepted 0x800000+0x6000
	// accepted 0x809000+0x2000
	// accepted 0x80b000+0x2000
	// accepted 0x810000+0x10000
	// digest 0b8772e5b0b41b83…
}

func ExampleLint() {
	cmdline := measure.KernelCmdline("console=ttyS0 random.trust_cpu=y tsc=reliable no-kvmclock oops=panic")
	for _, f := range measure.Lint(cmdline, nil) {
		fmt.Println(f.ID)
	}
	// Output:
	// entropy-trust-bootloader
	// rootfs-unbound
}

func ExampleMachine_PageOrder() {
	for _, v := range []string{"8.2.2", "9.2.1", ""} {
		o, _ := measure.Machine{QEMUVersion: v}.PageOrder()
		fmt.Printf("%q: %v\n", v, o)
	}
	yes := true // vm_config qemu_single_pass_add_pages: true selects two-pass, as in dstack
	o, _ := measure.Machine{QEMUVersion: "9.2.1", QEMUSinglePassAddPages: &yes}.PageOrder()
	fmt.Println("9.2.1 with qemu_single_pass_add_pages:", o)
	// Output:
	// "8.2.2": two_pass
	// "9.2.1": single_pass
	// "": single_pass
	// 9.2.1 with qemu_single_pass_add_pages: two_pass
}
