package measure

import (
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"
)

// FileDigests are the size and digests of a file hashed while it was read
// ([HashFile]): SHA-384, which the measurements use, and SHA-256 when it
// was asked for (sha256sum.txt lists SHA-256).
type FileDigests struct {
	Size   uint64
	SHA384 [48]byte
	// SHA256 is nil when it was not computed.
	SHA256 *[32]byte
}

// hashBufferSize is the read size of HashFile.
const hashBufferSize = 1 << 20

// HashFile reads r to its end, at most limit bytes, in one pass that
// computes SHA-384 and, if withSHA256, SHA-256; it holds one buffer of
// the file at a time. A longer input is [ErrMalformed].
func HashFile(r io.Reader, limit int64, withSHA256 bool) (FileDigests, error) {
	h384 := sha512.New384()
	var h256 hash.Hash
	if withSHA256 {
		h256 = sha256.New()
	}
	buf := make([]byte, hashBufferSize)
	var n int64
	for {
		k, err := r.Read(buf)
		if k > 0 {
			n += int64(k)
			if n > limit {
				return FileDigests{}, fmt.Errorf("%w: file is larger than %d bytes", ErrMalformed, limit)
			}
			h384.Write(buf[:k])
			if h256 != nil {
				h256.Write(buf[:k])
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return FileDigests{}, err
		}
	}
	d := FileDigests{Size: uint64(n)}
	h384.Sum(d.SHA384[:0])
	if h256 != nil {
		var s [32]byte
		h256.Sum(s[:0])
		d.SHA256 = &s
	}
	return d, nil
}

// initrdSize is the initrd's size in bytes.
func (img *Image) initrdSize() uint64 {
	if img.Initrd == nil && img.InitrdDigests != nil {
		return img.InitrdDigests.Size
	}
	return uint64(len(img.Initrd))
}

// initrdSHA384 is the initrd's SHA-384 (RTMR2's initrd event).
func (img *Image) initrdSHA384() [48]byte {
	if img.Initrd == nil && img.InitrdDigests != nil {
		return img.InitrdDigests.SHA384
	}
	return sha512.Sum384(img.Initrd)
}
