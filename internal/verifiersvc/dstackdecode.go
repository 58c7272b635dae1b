package verifiersvc

import "github.com/tdproof/tdproof/jsonscan"

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
	i := jsonscan.SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return s, false
	}
	i = jsonscan.SkipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return s, false // an empty object: let encoding/json answer
	}
	var seen [6]bool
	for {
		key, j, ok := jsonscan.PlainString(b, i)
		if !ok {
			return s, false
		}
		i = jsonscan.SkipSpace(b, j)
		if i >= len(b) || b[i] != ':' {
			return s, false
		}
		i = jsonscan.SkipSpace(b, i+1)
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
		null := hasWord(b, i, "null")
		switch {
		case null:
			i += 4
		case k == 3 && hasWord(b, i, "true"):
			s.debug, i = true, i+4
		case k == 3 && hasWord(b, i, "false"):
			i += 5
		case k == 3:
			return s, false
		default:
			if i, ok = jsonscan.SkipString(b, i); !ok {
				return s, false
			}
		}
		switch {
		case k == 0:
			s.quote = !null
		case k == 4:
			s.attestation = !null
		}
		i = jsonscan.SkipSpace(b, i)
		if i >= len(b) {
			return s, false
		}
		if b[i] == '}' {
			break
		}
		if b[i] != ',' {
			return s, false
		}
		i = jsonscan.SkipSpace(b, i+1)
	}
	if jsonscan.SkipSpace(b, i+1) != len(b) {
		return s, false
	}
	return s, true
}
