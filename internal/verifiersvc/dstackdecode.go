package verifiersvc

// dstackShape is what POST /verify needs of its request before verifying
// the body as dstack evidence: which members are present (not null) and
// whether it asks for debug output. dstack.ParseEvidence decodes the
// evidence itself.
type dstackShape struct {
	quote, attestation, debug bool
}

func shapeOf(req *DstackRequest) dstackShape {
	return dstackShape{quote: req.Quote != nil, attestation: req.Attestation != nil, debug: req.Debug != nil && *req.Debug}
}

// dstackShapeFast reads the shape of the usual /verify body in one pass,
// without decoding its strings (a dstack event log is tens of kilobytes
// of escaped JSON): an object whose members are DstackRequest's, each
// named exactly and at most once, with string or null values (debug:
// true, false or null). For anything else ok is false and the caller
// decodes the body with encoding/json, whose answer is the reference;
// FuzzDstackShapeFast checks that both agree wherever this answers.
func dstackShapeFast(b []byte) (s dstackShape, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return s, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return s, false // an empty object: let encoding/json answer
	}
	var seen [6]bool
	for {
		key, j, ok := plainString(b, i)
		if !ok {
			return s, false
		}
		i = skipSpace(b, j)
		if i >= len(b) || b[i] != ':' {
			return s, false
		}
		i = skipSpace(b, i+1)
		k := -1
		for n, name := range [...]string{"quote", "event_log", "vm_config", "debug", "attestation", "report_data"} {
			if key == name {
				k = n
			}
		}
		if k < 0 || seen[k] {
			return s, false
		}
		seen[k] = true
		null := hasPrefixAt(b, i, "null")
		switch {
		case null:
			i += 4
		case k == 3 && hasPrefixAt(b, i, "true"):
			s.debug, i = true, i+4
		case k == 3 && hasPrefixAt(b, i, "false"):
			i += 5
		case k == 3:
			return s, false
		default:
			if i, ok = skipString(b, i); !ok {
				return s, false
			}
		}
		switch {
		case k == 0:
			s.quote = !null
		case k == 4:
			s.attestation = !null
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return s, false
		}
		if b[i] == '}' {
			break
		}
		if b[i] != ',' {
			return s, false
		}
		i = skipSpace(b, i+1)
	}
	if skipSpace(b, i+1) != len(b) {
		return s, false
	}
	return s, true
}

// skipString returns the index after the JSON string at b[i:], checking
// it as encoding/json does: no control bytes, only JSON's escapes.
func skipString(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1, true
		case c < 0x20:
			return 0, false
		case c == '\\':
			j++
			if j >= len(b) {
				return 0, false
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-j < 5 || !isHex(b[j+1]) || !isHex(b[j+2]) || !isHex(b[j+3]) || !isHex(b[j+4]) {
					return 0, false
				}
				j += 4
			default:
				return 0, false
			}
		}
	}
	return 0, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
