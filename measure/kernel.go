package measure

import (
	"encoding/binary"
	"fmt"
)

// ACPIDataSize is the size QEMU reserves below the top of low memory for
// ACPI data, which bounds where it loads the initrd.
const ACPIDataSize = 0x28000

// minKernelSize is the smallest kernel QEMU's x86_load_linux accepts.
const minKernelSize = 0x1000

// xlfCanBeLoadedAbove4G is XLF_CAN_BE_LOADED_ABOVE_4G of xloadflags.
const xlfCanBeLoadedAbove4G = 1 << 1

// PatchKernelHeader returns a copy of the first 4 KiB of a bzImage with
// the setup header fields QEMU's x86_load_linux writes for a direct boot
// with an initrd of initrdSize bytes on a TD with memorySize bytes of RAM
// (§4.5, QEMU hw/i386/x86.c): type_of_loader, loadflags CAN_USE_HEAP,
// heap_end_ptr, cmd_line_ptr, and ramdisk_image/ramdisk_size. The highest
// initrd address is 4 GiB − 1 when the kernel sets
// XLF_CAN_BE_LOADED_ABOVE_4G (protocol ≥ 2.12), else initrd_addr_max
// (protocol ≥ 2.03), else 0x37ffffff, then capped below the RAM under
// 4 GiB minus [ACPIDataSize]. The rest of the kernel is
// unchanged. Errors wrap [ErrMalformed] (kernel shorter than 4 KiB, boot
// protocol too old for an initrd) or [ErrUnsupported] (initrd too large
// for the RAM).
func PatchKernelHeader(kernel []byte, initrdSize, memorySize uint64) ([]byte, error) {
	if len(kernel) < minKernelSize {
		return nil, fmt.Errorf("measure: kernel: %w: %d bytes, need at least %d", ErrMalformed, len(kernel), minKernelSize)
	}
	kd := append([]byte(nil), kernel[:minKernelSize]...)
	le := binary.LittleEndian
	protocol := le.Uint16(kd[0x206:])
	realAddr, cmdlineAddr := uint32(0x10000), uint32(0x20000)
	if protocol < 0x200 || kd[0x211]&0x01 == 0 {
		realAddr, cmdlineAddr = 0x90000, 0x9a000
	}
	if protocol >= 0x200 {
		kd[0x210] = 0xb0 // type_of_loader: QEMU
	}
	if protocol >= 0x201 {
		kd[0x211] |= 0x80 // loadflags: CAN_USE_HEAP
		le.PutUint32(kd[0x224:], cmdlineAddr-realAddr-0x200)
	}
	if protocol >= 0x202 {
		le.PutUint32(kd[0x228:], cmdlineAddr)
	} else {
		le.PutUint16(kd[0x20:], 0xa33f)
		le.PutUint16(kd[0x22:], uint16(cmdlineAddr-realAddr))
	}
	if initrdSize == 0 {
		return kd, nil
	}
	if protocol < 0x200 {
		return nil, fmt.Errorf("measure: kernel: %w: boot protocol %#x cannot load an initrd", ErrMalformed, protocol)
	}
	// Highest initrd address, as QEMU computes it. dstack-mr tests bit 6
	// of xloadflags instead of bit 1 and ignores initrd_addr_max from
	// protocol 2.12 on; both agree for kernels that set bits 1 and 6, as
	// current x86-64 kernels (dstack's, Debian's) do.
	var initrdMax uint64
	switch {
	case protocol >= 0x20c && le.Uint16(kd[0x236:])&xlfCanBeLoadedAbove4G != 0:
		initrdMax = 0xffffffff
	case protocol >= 0x203:
		initrdMax = uint64(le.Uint32(kd[0x22c:])) // initrd_addr_max
	default:
		initrdMax = 0x37ffffff
	}
	lowmem := uint64(LiteMemoryMin)
	if memorySize >= LiteMemoryMin {
		lowmem = LiteMemory2G
	}
	below4G := min(memorySize, lowmem)
	if below4G <= ACPIDataSize+1 {
		return nil, fmt.Errorf("measure: kernel: %w: %d bytes of RAM", ErrUnsupported, memorySize)
	}
	if initrdMax >= below4G-ACPIDataSize {
		initrdMax = below4G - ACPIDataSize - 1
	}
	if initrdSize >= initrdMax {
		return nil, fmt.Errorf("measure: kernel: %w: initrd of %d bytes does not fit below %#x", ErrUnsupported, initrdSize, initrdMax)
	}
	le.PutUint32(kd[0x218:], uint32((initrdMax-initrdSize)&^0xfff))
	le.PutUint32(kd[0x21c:], uint32(initrdSize))
	return kd, nil
}

// KernelAuthenticode returns the RTMR1 kernel digest: the
// [AuthenticodeSHA384] of the bzImage after [PatchKernelHeader]. The
// kernel is not copied.
func KernelAuthenticode(kernel []byte, initrdSize, memorySize uint64) ([48]byte, error) {
	head, err := PatchKernelHeader(kernel, initrdSize, memorySize)
	if err != nil {
		return [48]byte{}, err
	}
	return authenticode(peView{head: head, data: kernel})
}
