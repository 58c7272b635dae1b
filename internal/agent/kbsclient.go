package agent

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/tsm"
)

// ErrKBS means the KBS refused a step of the handshake; the error text
// carries its problem document.
var ErrKBS = errors.New("agent: KBS refused")

// Client fetches resources from a KBS speaking Trustee's protocol 0.4.0
// (rats-kbs.md §2): auth, attest with a TDX quote bound to a fresh TEE
// key, then the resource encrypted to that key.
type Client struct {
	// Quoter quotes the TD.
	Quoter tsm.Quoter
	// CCEL, if not nil, supplies the boot event log sent as cc_eventlog.
	CCEL tsm.EventLogReader
	// Runtime, if not nil, supplies the runtime events of RTMR3 (a
	// *Log). The evidence then also carries the event log in dstack's
	// JSON form (the CCEL's boot events, digests only, then the runtime
	// events), so the broker verifies the app identity they prove.
	Runtime RuntimeEvents
	// VMConfig is dstack's vm_config JSON, sent with the event log.
	VMConfig string
	// HTTP is the HTTP client; nil means http.DefaultClient.
	HTTP *http.Client
}

// RuntimeEvents is a source of runtime events; *Log implements it.
type RuntimeEvents interface {
	Events() ([]eventlog.Event, error)
}

const maxResponse = protocol.MaxMessageSize

// GetResource runs the RCAR handshake with the KBS at kbsURL (scheme and
// host, for example "https://kbs.example:8080") and returns the plaintext
// of resource "repository/type/tag".
func (c *Client) GetResource(ctx context.Context, kbsURL, resource string) ([]byte, error) {
	id, err := protocol.ParseResourceID(resource)
	if err != nil {
		return nil, err
	}
	resPath, err := id.Path()
	if err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(kbsURL, "/")

	// auth → challenge and session cookie.
	reqBody, err := json.Marshal(protocol.NewRequest(protocol.TeeTdx))
	if err != nil {
		return nil, err
	}
	body, cookie, err := c.do(ctx, http.MethodPost, base+protocol.PathAuth, reqBody, nil)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if cookie == nil {
		return nil, fmt.Errorf("auth: %w: no %s cookie", ErrKBS, protocol.SessionCookie)
	}
	ch, err := protocol.ParseChallenge(body)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}

	// attest: a fresh TEE key, bound to the nonce through REPORTDATA.
	priv, jwk, err := protocol.GenerateKey(0)
	if err != nil {
		return nil, err
	}
	rd, err := protocol.ReportData(ch.Nonce, jwk, "")
	if err != nil {
		return nil, err
	}
	// Read the logs before quoting: an event emitted in between makes
	// RTMR3 run ahead of the log, never behind it.
	ev, err := c.eventLogs()
	if err != nil {
		return nil, err
	}
	q, err := c.Quoter.Quote(ctx, rd)
	if err != nil {
		return nil, fmt.Errorf("quote: %w", err)
	}
	ev.Quote = base64.StdEncoding.EncodeToString(q)
	primary, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	att, err := json.Marshal(protocol.Attestation{
		RuntimeData: protocol.RuntimeData{Nonce: ch.Nonce, TeePubKey: jwk},
		TeeEvidence: protocol.CompositeEvidence{PrimaryEvidence: primary},
	})
	if err != nil {
		return nil, err
	}
	if _, _, err := c.do(ctx, http.MethodPost, base+protocol.PathAttest, att, cookie); err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}

	// resource, encrypted to the TEE key.
	body, _, err = c.do(ctx, http.MethodGet, base+resPath, nil, cookie)
	if err != nil {
		return nil, fmt.Errorf("resource %s: %w", id, err)
	}
	plain, err := protocol.DecryptResource(body, priv)
	if err != nil {
		return nil, fmt.Errorf("resource %s: %w", id, err)
	}
	return plain, nil
}

// eventLogs returns the evidence's event logs: cc_eventlog from CCEL and,
// with Runtime, the dstack event log.
func (c *Client) eventLogs() (protocol.TDXEvidence, error) {
	var ev protocol.TDXEvidence
	var boot []eventlog.Event
	if c.CCEL != nil {
		raw, err := c.CCEL.ReadCCEL()
		if err != nil {
			return ev, fmt.Errorf("read CCEL: %w", err)
		}
		s := base64.StdEncoding.EncodeToString(raw)
		ev.CCEventLog = &s
		if c.Runtime != nil {
			if boot, err = eventlog.ParseCCELEvents(raw); err != nil {
				return ev, fmt.Errorf("CCEL: %w", err)
			}
		}
	}
	if c.Runtime != nil {
		rt, err := c.Runtime.Events()
		if err != nil {
			return ev, err
		}
		ev.EventLog = string(eventlog.MarshalEvents(eventlog.Strip(append(boot, rt...))))
		ev.VMConfig = c.VMConfig
	}
	return ev, nil
}

// do sends one request and returns the body and the session cookie of a
// 200 response, or an ErrKBS error with the problem document.
func (c *Client) do(ctx context.Context, method, url string, body []byte, cookie *http.Cookie) ([]byte, *http.Cookie, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cookie != nil {
		req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > maxResponse {
		return nil, nil, fmt.Errorf("response larger than %d bytes", maxResponse)
	}
	if resp.StatusCode != http.StatusOK {
		var info protocol.ErrorInfo
		if json.Unmarshal(data, &info) == nil && info.Type != "" {
			return nil, nil, fmt.Errorf("%w: %s: %s (%s)", ErrKBS, resp.Status, info.Detail, info.Type)
		}
		return nil, nil, fmt.Errorf("%w: %s", ErrKBS, resp.Status)
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == protocol.SessionCookie {
			session = ck
		}
	}
	return data, session, nil
}
