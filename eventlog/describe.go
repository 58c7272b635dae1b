package eventlog

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// describe summarizes event data for display. name, if non-empty, is the
// event's label (JSON "event").
func describe(t EventType, data []byte, name string) string {
	if t == EvDstackRuntime {
		return fmt.Sprintf("runtime event %s, %d-byte payload%s", strconv.Quote(name), len(data), preview(data, ": "))
	}
	s := describeData(t, data)
	if name != "" {
		return name + ": " + s
	}
	return s
}

func describeData(t EventType, data []byte) string {
	if len(data) == 0 {
		return "no event data"
	}
	switch t {
	case EvEFIVariableDriverConfig, EvEFIVariableBoot, EvEFIVariableBoot2, EvEFIVariableAuthority:
		v, err := ParseVariableData(data)
		if err != nil {
			return undecodable("UEFI_VARIABLE_DATA", data)
		}
		return fmt.Sprintf("variable %s %s, %d bytes of data", v.VendorGUID, strconv.Quote(v.Name), len(v.Data))
	case EvEFIBootServicesApplication, EvEFIBootServicesDriver, EvEFIRuntimeServicesDriver:
		e, err := ParseImageLoadEvent(data)
		if err != nil {
			return undecodable("UEFI_IMAGE_LOAD_EVENT", data)
		}
		return fmt.Sprintf("image at %#x, %#x bytes, device path (%d bytes) %s",
			e.ImageLocation, e.ImageLength, len(e.DevicePath), devicePathString(e.DevicePath))
	case EvEFIPlatformFirmwareBlob2:
		b, err := ParseFirmwareBlob2(data)
		if err != nil {
			return undecodable("UEFI_PLATFORM_FIRMWARE_BLOB2", data)
		}
		return fmt.Sprintf("firmware blob %s at %#x, %#x bytes", strconv.Quote(trimNUL(b.Description)), b.Base, b.Length)
	case EvEFIPlatformFirmwareBlob:
		if len(data) != 16 {
			return undecodable("UEFI_PLATFORM_FIRMWARE_BLOB", data)
		}
		return fmt.Sprintf("firmware blob at %#x, %#x bytes", binary.LittleEndian.Uint64(data), binary.LittleEndian.Uint64(data[8:]))
	case EvEFIHandoffTables2:
		h, err := ParseHandoffTables2(data)
		if err != nil {
			return undecodable("UEFI_HANDOFF_TABLE_POINTERS2", data)
		}
		return fmt.Sprintf("handoff tables %s: %s", strconv.Quote(trimNUL(h.Description)), tablesString(h.Tables))
	case EvEFIHandoffTables:
		r := uefiReader{b: data, what: "UEFI_HANDOFF_TABLE_POINTERS"}
		tables := r.tables()
		if r.done() != nil {
			return undecodable("UEFI_HANDOFF_TABLE_POINTERS", data)
		}
		return "handoff tables: " + tablesString(tables)
	case EvEventTag:
		tg, err := ParseTaggedEvent(data)
		if err != nil {
			return undecodable("TCG_PCClientTaggedEvent", data)
		}
		label := ""
		switch tg.ID {
		case TagLinuxInitrd:
			label = " (Linux initrd)"
		case TagLinuxLoadOptions:
			label = " (Linux load options)"
		}
		return fmt.Sprintf("tagged event %#08x%s, %d bytes%s", tg.ID, label, len(tg.Data), preview(tg.Data, ": "))
	case EvSeparator:
		if len(data) == 4 {
			switch binary.LittleEndian.Uint32(data) {
			case 0:
				return "separator"
			case 0xFFFFFFFF:
				return "separator (error)"
			}
		}
		return "separator" + preview(data, ": ")
	case EvNoAction:
		if s, err := ParseSpecIDEvent(data); err == nil {
			algs := make([]string, len(s.Algorithms))
			for i, a := range s.Algorithms {
				algs[i] = fmt.Sprintf("%s/%d", a.Alg, a.DigestSize)
			}
			return fmt.Sprintf("Spec ID Event03 %d.%d errata %d, digests %s", s.SpecVersionMajor, s.SpecVersionMinor, s.SpecErrata, strings.Join(algs, " "))
		}
		if i := bytes.IndexByte(data, 0); i > 0 && isPrintable(data[:i]) {
			return fmt.Sprintf("%s, %d bytes", strconv.Quote(string(data[:i])), len(data))
		}
	case EvEFIGPTEvent:
		// UEFI_GPT_DATA: a 92-byte partition table header, then a UINT64
		// partition count.
		if len(data) >= 100 && string(data[:8]) == "EFI PART" {
			return fmt.Sprintf("GPT, %d partitions", binary.LittleEndian.Uint64(data[92:]))
		}
		return undecodable("UEFI_GPT_DATA", data)
	}
	if p := preview(data, ""); p != "" {
		return p
	}
	return fmt.Sprintf("%d bytes", len(data))
}

func undecodable(what string, data []byte) string {
	return fmt.Sprintf("malformed %s (%d bytes)", what, len(data))
}

func tablesString(tables []ConfigurationTable) string {
	parts := make([]string, len(tables))
	for i, t := range tables {
		parts[i] = fmt.Sprintf("%s at %#x", t.VendorGUID, t.Pointer)
	}
	return fmt.Sprintf("%d table(s) [%s]", len(tables), strings.Join(parts, ", "))
}

func trimNUL(s string) string { return strings.TrimRight(s, "\x00") }

func isPrintable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// preview renders short data as a quoted string when it is printable
// ASCII (ignoring trailing NULs) and as hex otherwise, truncated to 32
// bytes. It returns "" for empty data and otherwise sep and the rendering.
func preview(data []byte, sep string) string {
	if len(data) == 0 {
		return ""
	}
	if t := bytes.TrimRight(data, "\x00"); len(t) > 0 && isPrintable(t) {
		if len(t) > 96 {
			return sep + strconv.Quote(string(t[:96])) + "…"
		}
		return sep + strconv.Quote(string(t))
	}
	if len(data) > 32 {
		return sep + hex.EncodeToString(data[:32]) + "…"
	}
	return sep + hex.EncodeToString(data)
}

// devicePathString renders an EFI device path for display, e.g.
// "VenMedia(1428F772-B64A-441E-B8C3-9EBDD7F893C7)/kernel".
func devicePathString(dp []byte) string {
	var parts []string
	for len(dp) > 0 {
		if len(dp) < 4 {
			return "malformed device path"
		}
		typ, sub, n := dp[0], dp[1], int(binary.LittleEndian.Uint16(dp[2:4]))
		if n < 4 || n > len(dp) {
			return "malformed device path"
		}
		body := dp[4:n]
		dp = dp[n:]
		var g GUID
		switch {
		case typ == 0x7f && sub == 0xff:
			dp = nil // end of entire path
		case typ == 0x7f:
			parts = append(parts, ",") // end of instance
		case typ == 0x04 && sub == 0x04:
			parts = append(parts, decodeUTF16(body[:len(body)&^1]))
		case typ == 0x04 && sub == 0x03 && len(body) >= 16:
			copy(g[:], body)
			parts = append(parts, "VenMedia("+g.String()+")")
		case typ == 0x04 && sub == 0x06 && len(body) == 16:
			copy(g[:], body)
			parts = append(parts, "FvFile("+g.String()+")")
		case typ == 0x04 && sub == 0x07 && len(body) == 16:
			copy(g[:], body)
			parts = append(parts, "Fv("+g.String()+")")
		case typ == 0x01 && sub == 0x01 && len(body) == 2:
			parts = append(parts, fmt.Sprintf("Pci(%#x,%#x)", body[1], body[0]))
		case typ == 0x02 && sub == 0x01 && len(body) == 8:
			parts = append(parts, fmt.Sprintf("Acpi(%#x,%#x)", binary.LittleEndian.Uint32(body), binary.LittleEndian.Uint32(body[4:])))
		default:
			parts = append(parts, fmt.Sprintf("Path(%d,%d)", typ, sub))
		}
	}
	if len(parts) == 0 {
		return "(empty)"
	}
	return strings.Join(parts, "/")
}
