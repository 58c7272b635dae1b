package kbs

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// TestReadAllHint: whatever length a request declares, readAllHint reads
// what io.ReadAll reads, and returns its error.
func TestReadAllHint(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000)
	boom := errors.New("boom")
	readers := map[string]func([]byte) io.Reader{
		"plain":    func(b []byte) io.Reader { return bytes.NewReader(b) },
		"one byte": func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) },
		"half":     func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) },
		"data+EOF": func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) },
		"error":    func(b []byte) io.Reader { return io.MultiReader(bytes.NewReader(b), iotest.ErrReader(boom)) },
	}
	for _, size := range []int{0, 1, 9999, 10000} {
		body := data[:size]
		for name, mk := range readers {
			want, werr := io.ReadAll(mk(body))
			for _, declared := range []int64{-1, 0, 1, int64(size) - 1, int64(size), int64(size) + 1, 1 << 20, 1 << 30} {
				got, err := readAllHint(mk(body), declared, 1<<20)
				if !bytes.Equal(got, want) || !errors.Is(err, werr) && err != werr {
					t.Errorf("%s, %d bytes, declared %d: %d bytes, %v; io.ReadAll %d bytes, %v", name, size, declared, len(got), err, len(want), werr)
				}
			}
		}
	}
}

// TestReadAllHintBounded: a declared length does not make readAllHint
// allocate more than maxBodyHint before the bytes arrive.
func TestReadAllHintBounded(t *testing.T) {
	got, err := readAllHint(bytes.NewReader(nil), 64<<20, 64<<20)
	if err != nil || len(got) != 0 {
		t.Fatalf("readAllHint = %d bytes, %v", len(got), err)
	}
	if cap(got) > 1<<20+1 {
		t.Fatalf("%d bytes allocated for an empty body declared as 64 MiB, want at most %d", cap(got), 1<<20+1)
	}
}
