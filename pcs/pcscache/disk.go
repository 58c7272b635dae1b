package pcscache

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tdproof/tdproof/pcs"
)

// pckCertDir holds cached PCK certificates, by request ID.
const pckCertDir = "pckcert"

// pckCertsDir holds cached pckcerts responses, by request ID.
const pckCertsDir = "pckcerts"

// maxFileSize bounds files read from the directory.
const maxFileSize = pcs.MaxBodySize

// itemFile returns the base path (without suffix) of k in dir.
func itemFile(dir string, k pcs.ItemKey) string {
	return filepath.Join(dir, filepath.FromSlash(k.Path()))
}

// readResponse reads base.body and, if present, base.headers.json.
func readResponse(base string) ([]byte, http.Header, time.Time, error) {
	st, err := os.Stat(base + pcs.BodySuffix)
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	if st.Size() > maxFileSize {
		return nil, nil, time.Time{}, fmt.Errorf("%s%s is larger than %d bytes", base, pcs.BodySuffix, maxFileSize)
	}
	body, err := os.ReadFile(base + pcs.BodySuffix)
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	h := http.Header{}
	hb, err := os.ReadFile(base + pcs.HeadersSuffix)
	switch {
	case err == nil:
		var m map[string]string
		if err := json.Unmarshal(hb, &m); err != nil {
			return nil, nil, time.Time{}, fmt.Errorf("%s%s: %w", base, pcs.HeadersSuffix, err)
		}
		for k, v := range m {
			h.Set(k, v)
		}
	case !os.IsNotExist(err):
		return nil, nil, time.Time{}, err
	}
	return body, h, st.ModTime(), nil
}

// readItem reads and verifies k from the directory. The fetch time is
// the body file's modification time.
func (c *Cache) readItem(k pcs.ItemKey) (*pcs.Item, time.Time, error) {
	body, h, mtime, err := readResponse(itemFile(c.dir, k))
	if err != nil {
		return nil, time.Time{}, err
	}
	it, err := pcs.DecodeItem(k, body, h, c.cfg.root)
	if err != nil {
		return nil, time.Time{}, err
	}
	return it, mtime, nil
}

// writeItem writes k's response to the directory: headers first, then
// the body, each atomically.
func (c *Cache) writeItem(k pcs.ItemKey, it *pcs.Item) error {
	return writeResponse(itemFile(c.dir, k), it.Body, it.Header)
}

func writeResponse(base string, body []byte, header map[string]string) error {
	if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
		return err
	}
	if len(header) > 0 {
		hb, err := json.MarshalIndent(header, "", " ")
		if err != nil {
			return err
		}
		if err := writeAtomic(base+pcs.HeadersSuffix, append(hb, '\n')); err != nil {
			return err
		}
	}
	return writeAtomic(base+pcs.BodySuffix, body)
}

// writeAtomic writes data to a temporary file next to name, syncs it and
// renames it over name, so readers see the old or the new file, never a
// part.
func writeAtomic(name string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-"+filepath.Base(name)+"-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

// loadDir reads every item of the directory into memory (items already
// in memory win). Unusable files are logged and skipped.
func (c *Cache) loadDir() int {
	if c.dir == "" {
		return 0
	}
	n := 0
	err := filepath.WalkDir(c.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == pckCertDir || d.Name() == pckCertsDir {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, pcs.BodySuffix) || strings.HasPrefix(d.Name(), ".tmp-") {
			return nil
		}
		rel, err := filepath.Rel(c.dir, strings.TrimSuffix(p, pcs.BodySuffix))
		if err != nil {
			return nil
		}
		k, err := pcs.ParseItemPath(filepath.ToSlash(rel))
		if err != nil {
			return nil // not ours
		}
		c.mu.RLock()
		_, have := c.items[k]
		c.mu.RUnlock()
		if have {
			return nil
		}
		it, mtime, err := c.readItem(k)
		if err != nil {
			c.cfg.log.Warn("pcscache: ignoring unusable cached item", "file", p, "err", err)
			return nil
		}
		c.mu.Lock()
		if _, have := c.items[k]; !have {
			c.items[k] = &entry{item: it, fetchedAt: mtime}
			n++
		}
		c.mu.Unlock()
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		c.cfg.log.Warn("pcscache: reading the cache directory", "dir", c.dir, "err", err)
	}
	return n
}
