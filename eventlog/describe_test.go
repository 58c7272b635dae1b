package eventlog_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/eventlog"
)

func TestEventTypeString(t *testing.T) {
	t.Parallel()
	tests := map[eventlog.EventType]string{
		eventlog.EvNoAction:                   "EV_NO_ACTION",
		eventlog.EvSeparator:                  "EV_SEPARATOR",
		eventlog.EvEventTag:                   "EV_EVENT_TAG",
		eventlog.EvPlatformConfigFlags:        "EV_PLATFORM_CONFIG_FLAGS",
		eventlog.EvIPL:                        "EV_IPL",
		eventlog.EvEFIVariableDriverConfig:    "EV_EFI_VARIABLE_DRIVER_CONFIG",
		eventlog.EvEFIVariableBoot:            "EV_EFI_VARIABLE_BOOT",
		eventlog.EvEFIVariableBoot2:           "EV_EFI_VARIABLE_BOOT2",
		eventlog.EvEFIVariableAuthority:       "EV_EFI_VARIABLE_AUTHORITY",
		eventlog.EvEFIBootServicesApplication: "EV_EFI_BOOT_SERVICES_APPLICATION",
		eventlog.EvEFIGPTEvent:                "EV_EFI_GPT_EVENT",
		eventlog.EvEFIAction:                  "EV_EFI_ACTION",
		eventlog.EvEFIPlatformFirmwareBlob2:   "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
		eventlog.EvEFIHandoffTables2:          "EV_EFI_HANDOFF_TABLES2",
		eventlog.EvEFIHCRTMEvent:              "EV_EFI_HCRTM_EVENT",
		eventlog.EvDstackRuntime:              "DSTACK_RUNTIME_EVENT",
		0x12345678:                            "EV_UNKNOWN_0x12345678",
	}
	for typ, want := range tests {
		if got := typ.String(); got != want {
			t.Errorf("EventType(%#x).String() = %s, want %s", uint32(typ), got, want)
		}
	}
	if uint32(eventlog.EvDstackRuntime) != 134217729 || uint32(eventlog.EvEFIHandoffTables2) != 0x8000000B {
		t.Error("event type values changed")
	}
}

func TestAlg(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		alg  eventlog.Alg
		name string
		size int
	}{
		{eventlog.AlgSHA1, "SHA1", 20}, {eventlog.AlgSHA256, "SHA256", 32}, {eventlog.AlgSHA384, "SHA384", 48},
		{eventlog.AlgSHA512, "SHA512", 64}, {eventlog.AlgSM3, "SM3_256", 32}, {0x0099, "0x0099", 0},
	} {
		if tc.alg.String() != tc.name || tc.alg.Size() != tc.size {
			t.Errorf("Alg %#x = %s/%d, want %s/%d", uint16(tc.alg), tc.alg, tc.alg.Size(), tc.name, tc.size)
		}
	}
}

func TestGUIDString(t *testing.T) {
	t.Parallel()
	if got, want := efiGlobalVariable.String(), "8BE4DF61-93CA-11D2-AA0D-00E098032B8C"; got != want {
		t.Errorf("GUID.String() = %s, want %s", got, want)
	}
}

func TestUEFIDecoders(t *testing.T) {
	t.Parallel()
	v, err := eventlog.ParseVariableData(variableData(efiGlobalVariable, "BootOrder", []byte{0, 0}))
	if err != nil || v.VendorGUID != efiGlobalVariable || v.Name != "BootOrder" || !bytes.Equal(v.Data, []byte{0, 0}) {
		t.Errorf("ParseVariableData = %+v, %v", v, err)
	}
	img := bytes.Join([][]byte{le64(0x1000), le64(0x2000), le64(0), le64(4), {0x7f, 0xff, 4, 0}}, nil)
	ie, err := eventlog.ParseImageLoadEvent(img)
	if err != nil || ie.ImageLocation != 0x1000 || ie.ImageLength != 0x2000 || len(ie.DevicePath) != 4 {
		t.Errorf("ParseImageLoadEvent = %+v, %v", ie, err)
	}
	blob := bytes.Join([][]byte{{3}, []byte("Fv\x00"), le64(0xffc00000), le64(0x84000)}, nil)
	b, err := eventlog.ParseFirmwareBlob2(blob)
	if err != nil || b.Description != "Fv\x00" || b.Base != 0xffc00000 || b.Length != 0x84000 {
		t.Errorf("ParseFirmwareBlob2 = %+v, %v", b, err)
	}
	ht := bytes.Join([][]byte{{2}, []byte("T\x00"), le64(2), efiGlobalVariable[:], le64(1), efiGlobalVariable[:], le64(2)}, nil)
	h, err := eventlog.ParseHandoffTables2(ht)
	if err != nil || h.Description != "T\x00" || len(h.Tables) != 2 || h.Tables[1].Pointer != 2 {
		t.Errorf("ParseHandoffTables2 = %+v, %v", h, err)
	}
	tag := bytes.Join([][]byte{le32(eventlog.TagLinuxInitrd), le32(3), []byte("abc")}, nil)
	tg, err := eventlog.ParseTaggedEvent(tag)
	if err != nil || tg.ID != eventlog.TagLinuxInitrd || string(tg.Data) != "abc" {
		t.Errorf("ParseTaggedEvent = %+v, %v", tg, err)
	}

	// Every truncation and one extra byte are malformed.
	decoders := map[string]struct {
		parse func([]byte) error
		data  []byte
	}{
		"variable": {func(b []byte) error { _, err := eventlog.ParseVariableData(b); return err }, variableData(efiGlobalVariable, "db", []byte{1})},
		"image":    {func(b []byte) error { _, err := eventlog.ParseImageLoadEvent(b); return err }, img},
		"blob2":    {func(b []byte) error { _, err := eventlog.ParseFirmwareBlob2(b); return err }, blob},
		"handoff2": {func(b []byte) error { _, err := eventlog.ParseHandoffTables2(b); return err }, ht},
		"tagged":   {func(b []byte) error { _, err := eventlog.ParseTaggedEvent(b); return err }, tag},
	}
	for name, d := range decoders {
		for n := range len(d.data) {
			if err := d.parse(d.data[:n]); !errors.Is(err, eventlog.ErrMalformed) {
				t.Errorf("%s: data[:%d] error = %v, want ErrMalformed", name, n, err)
			}
		}
		if err := d.parse(append(bytes.Clone(d.data), 0)); !errors.Is(err, eventlog.ErrMalformed) {
			t.Errorf("%s: trailing byte error = %v, want ErrMalformed", name, err)
		}
	}
	huge := bytes.Join([][]byte{efiGlobalVariable[:], le64(1 << 62), le64(0)}, nil)
	if _, err := eventlog.ParseVariableData(huge); !errors.Is(err, eventlog.ErrMalformed) {
		t.Errorf("huge name length: %v", err)
	}
	hugeTables := bytes.Join([][]byte{{0}, le64(1 << 60)}, nil)
	if _, err := eventlog.ParseHandoffTables2(hugeTables); !errors.Is(err, eventlog.ErrMalformed) {
		t.Errorf("huge table count: %v", err)
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ  eventlog.EventType
		data []byte
		want string
	}{
		{eventlog.EvEFIVariableBoot, []byte{1, 2}, "malformed UEFI_VARIABLE_DATA (2 bytes)"},
		{eventlog.EvEFIBootServicesApplication, []byte{1}, "malformed UEFI_IMAGE_LOAD_EVENT (1 bytes)"},
		{eventlog.EvEFIBootServicesDriver, bytes.Join([][]byte{le64(1), le64(2), le64(0), le64(6), {1, 1, 6, 0, 2, 0x1f}}, nil), "image at 0x1, 0x2 bytes, device path (6 bytes) Pci(0x1f,0x2)"},
		{eventlog.EvEFIBootServicesDriver, bytes.Join([][]byte{le64(1), le64(2), le64(0), le64(4), {1, 1, 9, 0}}, nil), "image at 0x1, 0x2 bytes, device path (4 bytes) malformed device path"},
		{eventlog.EvEFIPlatformFirmwareBlob, append(le64(0x100), le64(0x200)...), "firmware blob at 0x100, 0x200 bytes"},
		{eventlog.EvEFIPlatformFirmwareBlob, []byte{1}, "malformed UEFI_PLATFORM_FIRMWARE_BLOB (1 bytes)"},
		{eventlog.EvEFIHandoffTables, append(le64(1), append(efiGlobalVariable[:], le64(0x10)...)...), "handoff tables: 1 table(s) [8BE4DF61-93CA-11D2-AA0D-00E098032B8C at 0x10]"},
		{eventlog.EvEFIHandoffTables2, []byte{5}, "malformed UEFI_HANDOFF_TABLE_POINTERS2 (1 bytes)"},
		{eventlog.EvEventTag, bytes.Join([][]byte{le32(eventlog.TagLinuxLoadOptions), le32(4), {1, 2, 3, 4}}, nil), "tagged event 0x8f3b22ed (Linux load options), 4 bytes: 01020304"},
		{eventlog.EvEventTag, []byte{1}, "malformed TCG_PCClientTaggedEvent (1 bytes)"},
		{eventlog.EvSeparator, []byte{0xff, 0xff, 0xff, 0xff}, "separator (error)"},
		{eventlog.EvSeparator, []byte{1, 0}, "separator: 0100"},
		{eventlog.EvNoAction, []byte("StartupLocality\x00\x03"), `"StartupLocality", 17 bytes`},
		{eventlog.EvNoAction, []byte{0xfe}, "fe"},
		{eventlog.EvEFIGPTEvent, []byte("EFI"), "malformed UEFI_GPT_DATA (3 bytes)"},
		{eventlog.EvEFIGPTEvent, append(append([]byte("EFI PART"), make([]byte, 84)...), le64(4)...), "GPT, 4 partitions"},
		{eventlog.EvIPL, []byte("grub_cmd linux\x00"), `"grub_cmd linux"`},
		{eventlog.EvEFIAction, bytes.Repeat([]byte{0xaa}, 40), strings.Repeat("aa", 32) + "…"},
		{eventlog.EvPostCode, nil, "no event data"},
		{0x7777, []byte{0, 0}, "0000"},
	}
	for _, tc := range tests {
		e := eventlog.TCGEvent{Type: tc.typ, Data: tc.data}
		if got := e.Describe(); got != tc.want {
			t.Errorf("Describe(%s, %x) = %q, want %q", tc.typ, tc.data, got, tc.want)
		}
	}
}
