package cli

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/internal/agent"
	"github.com/tdproof/tdproof/internal/kbs"
	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/tdsim"
	"github.com/tdproof/tdproof/verifier"
)

// demoResource is the resource the demo stores and fetches.
const demoResource = "default/key/1"

// simulatorWarning is printed whenever a simulator trust root is trusted.
const simulatorWarning = "WARNING: the verifier trusts a SIMULATOR root CA (tdsim): its quotes are forged evidence, never accept them in production"

func (a *app) demoCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Run the whole attestation and key-release story in one process",
		Long: `Run the whole story in one process, without network access beyond loopback:
a simulated TD (tdsim) boots and the agent records its app's identity
(compose hash, app id, instance id) in RTMR3; a verifier that explicitly
trusts the SIMULATOR root CA gets the TD's MRTD, RTMR0–2 and compose hash as
reference values (in a temporary SQLite store); a key broker (KBS, Trustee
protocol 0.4.0) listens on 127.0.0.1 with a secret stored at ` + demoResource + `;
the attestation agent's KBS client, quoting with the simulated TD and
sending its event log, attests and receives the secret; then a tampered TD
(a changed RTMR1 boot event, as a modified kernel would give) and a TD
running another app on the same image attest and are refused.

Every step is printed. The simulator root is trusted only inside this
process: nothing the demo does is evidence about real hardware.`,
		Annotations: map[string]string{"exit_codes": `  0  the story went as expected (secret released, tampered TD and other app refused)
  1  it did not`},
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.ran = true
			return a.runDemo(cmd.Context())
		},
	}
}

// simKBS is an in-process KBS whose verifier trusts a simulator root.
type simKBS struct {
	st     *store.Store
	broker *kbs.Broker
	url    string
	srv    *http.Server
	done   chan struct{}
}

// close stops the server and closes the store.
func (k *simKBS) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = k.srv.Shutdown(ctx)
	<-k.done
	_ = k.st.Close()
}

// startSimKBS opens a SQLite store under dir, ingests refs as reference
// values, builds a verifier trusting sim's root (collateral from sim) and
// an EAR signer, and serves a KBS on a 127.0.0.1 port.
func startSimKBS(ctx context.Context, dir string, sim *tdsim.Sim, refs []refvalue.Value) (*simKBS, error) {
	st, err := store.Open(ctx, filepath.Join(dir, "tdproof.db"))
	if err != nil {
		return nil, fmt.Errorf("open the store: %w", err)
	}
	k, err := func() (*simKBS, error) {
		for _, r := range refs {
			if _, err := st.RefValues().Add(ctx, r); err != nil {
				return nil, fmt.Errorf("reference value %s: %w", r.Name, err)
			}
		}
		key, err := ear.GenerateKey(nil)
		if err != nil {
			return nil, err
		}
		keys, err := ear.NewKeySet(key)
		if err != nil {
			return nil, err
		}
		signer, err := ear.NewSigner(keys)
		if err != nil {
			return nil, err
		}
		src := verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) {
			return sim.Collateral(time.Now())
		})
		v, err := verifier.New(src, st.RefValues(), signer, verifier.WithTrustedRoot(sim.TrustRoot()))
		if err != nil {
			return nil, err
		}
		kek := make([]byte, 32)
		if _, err := rand.Read(kek); err != nil {
			return nil, err
		}
		b, err := kbs.New(kbs.Config{Store: st, Verifier: v, TokenKeys: keys, KEK: kek})
		if err != nil {
			return nil, err
		}
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		k := &simKBS{st: st, broker: b, url: "http://" + ln.Addr().String(),
			srv: &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}, done: make(chan struct{})}
		go func() {
			defer close(k.done)
			_ = k.srv.Serve(ln)
		}()
		return k, nil
	}()
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	return k, nil
}

// simRefValues returns reference values for sim's MRTD and RTMR0–2.
func simRefValues(sim *tdsim.Sim) []refvalue.Value {
	prov := refvalue.Provenance{Source: "tdproof demo (tdsim)"}
	out := []refvalue.Value{{Name: "tdx.mr_td", Values: []string{hexOf(sim.MRTD())}, Provenance: prov}}
	rt := sim.RTMRs()
	for i := range 3 {
		out = append(out, refvalue.Value{Name: fmt.Sprintf("tdx.rtmr_%d", i), Values: []string{hex.EncodeToString(rt[i][:])}, Provenance: prov})
	}
	return out
}

// The demo's app-compose.json documents: the genuine app and another one.
const (
	demoAppCompose   = `{"manifest_version":2,"name":"demo","runner":"docker-compose","docker_compose_file":"services: {web: {image: nginx}}"}`
	demoOtherCompose = `{"manifest_version":2,"name":"demo","runner":"docker-compose","docker_compose_file":"services: {web: {image: attacker/nginx}}"}`
)

// bootDemoApp records the identity events of appCompose on a runtime
// event log at path, extending sim's RTMR3, as the agent does at boot.
func bootDemoApp(path string, sim *tdsim.Sim, appCompose string) (*agent.Log, *dstack.Identity, error) {
	l := &agent.Log{Path: path, Extender: sim}
	id, err := agent.EmitBootEvents(l, agent.Boot{AppCompose: []byte(appCompose)})
	if err != nil {
		return nil, nil, fmt.Errorf("boot events: %w", err)
	}
	return l, id, nil
}

func hexOf(b [48]byte) string { return hex.EncodeToString(b[:]) }

// tamperedBootEvents returns the synthetic boot events with the RTMR1
// action event's payload (and digest) changed, as a modified kernel would.
func tamperedBootEvents() []eventlog.Event {
	evs := slices.Clone(tdsim.SyntheticBootEvents())
	for i, e := range evs {
		if e.IMR == 1 && e.Type == eventlog.EvEFIAction {
			p := []byte("tdsim RTMR1 boot (tampered kernel)")
			d := sha512.Sum384(p)
			evs[i].Payload, evs[i].Digest = p, d[:]
			break
		}
	}
	return evs
}

func (a *app) runDemo(ctx context.Context) error {
	w := a.stdout
	dir, err := os.MkdirTemp("", "tdproof-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	sim, err := tdsim.New(tdsim.Config{})
	if err != nil {
		return err
	}
	rt := sim.RTMRs()
	fmt.Fprintf(w, "1. simulated TD booted: MRTD %s\n", hexOf(sim.MRTD()))
	for i := range 3 {
		fmt.Fprintf(w, "   RTMR%d %s\n", i, hex.EncodeToString(rt[i][:]))
	}
	log, ident, err := bootDemoApp(filepath.Join(dir, "good.log"), sim, demoAppCompose)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	rt = sim.RTMRs()
	fmt.Fprintf(w, "   agent recorded the app identity in RTMR3 (system-preparing … system-ready): compose hash %s, app id %s; RTMR3 %s\n",
		ident.ComposeHash, ident.AppID, hex.EncodeToString(rt[3][:]))

	refs := append(simRefValues(sim), refvalue.Value{Name: "dstack.compose_hash", Values: []string{ident.ComposeHash.String()},
		Provenance: refvalue.Provenance{Source: "tdproof demo (app-compose.json)"}})
	k, err := startSimKBS(ctx, dir, sim, nil)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer k.close()
	fmt.Fprintf(w, "2. verifier ready: default policy, an empty reference-value store (temporary SQLite), EAR signing key generated\n")
	fmt.Fprintf(w, "   !!! %s\n", simulatorWarning)
	fp := sha256.Sum256(sim.TrustRoot().Raw)
	fmt.Fprintf(w, "   !!! trusted root: SHA-256 %s, generated in this process (its subject imitates Intel's)\n", hex.EncodeToString(fp[:]))

	id, err := protocol.ParseResourceID(demoResource)
	if err != nil {
		return err
	}
	secret := []byte("demo image decryption key " + rand.Text())
	if err := k.broker.PutResource(ctx, id, secret); err != nil {
		return fmt.Errorf("demo: store the secret: %w", err)
	}
	fmt.Fprintf(w, "3. KBS listening on %s (Trustee protocol 0.4.0), secret stored at %s (AES-256-GCM at rest)\n", k.url, demoResource)

	c := &agent.Client{Quoter: sim, CCEL: sim, Runtime: log}
	got, err := c.GetResource(ctx, k.url, demoResource)
	if err == nil {
		return fmt.Errorf("demo: %d bytes released to a TD no reference value pins", len(got))
	}
	if !errors.Is(err, agent.ErrKBS) {
		return fmt.Errorf("demo: unpinned TD: %w", err)
	}
	fmt.Fprintf(w, "4. no reference values yet: the genuine TD is authentic but at most 'warning' (nothing pins its MRTD, RTMR0–2), and the default resource policy refuses it: %v\n", err)

	for _, r := range refs {
		if _, err := k.st.RefValues().Add(ctx, r); err != nil {
			return fmt.Errorf("demo: reference value %s: %w", r.Name, err)
		}
	}
	fmt.Fprintf(w, "5. reference values added for MRTD, RTMR0–2 (what tdproof measure computes offline) and the app's compose hash\n")
	got, err = c.GetResource(ctx, k.url, demoResource)
	if err != nil {
		return fmt.Errorf("demo: the genuine TD was refused: %w", err)
	}
	if string(got) != string(secret) {
		return errors.New("demo: the released secret differs from the stored one")
	}
	fmt.Fprintf(w, "6. secret released: agent attested (auth, attest with a quote bound to a fresh TEE key and the event log proving the app identity, resource as JWE) and decrypted %q\n", got)

	bad, err := tdsim.New(tdsim.Config{BootEvents: tamperedBootEvents(), PKI: sim.PKI()})
	if err != nil {
		return err
	}
	badRT := bad.RTMRs()
	c = &agent.Client{Quoter: bad, CCEL: bad}
	got, err = c.GetResource(ctx, k.url, demoResource)
	if err == nil {
		return fmt.Errorf("demo: the tampered TD (RTMR1 %s) received %d bytes", hex.EncodeToString(badRT[1][:]), len(got))
	}
	if !errors.Is(err, agent.ErrKBS) {
		return fmt.Errorf("demo: tampered TD: %w", err)
	}
	fmt.Fprintf(w, "7. tampered TD refused (its RTMR1 %s differs from the reference value): %v\n", hex.EncodeToString(badRT[1][:]), err)

	other, err := tdsim.New(tdsim.Config{PKI: sim.PKI()})
	if err != nil {
		return err
	}
	otherLog, otherID, err := bootDemoApp(filepath.Join(dir, "other.log"), other, demoOtherCompose)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	c = &agent.Client{Quoter: other, CCEL: other, Runtime: otherLog}
	got, err = c.GetResource(ctx, k.url, demoResource)
	if err == nil {
		return fmt.Errorf("demo: the TD running another app (compose hash %s) received %d bytes", otherID.ComposeHash, len(got))
	}
	if !errors.Is(err, agent.ErrKBS) {
		return fmt.Errorf("demo: other app: %w", err)
	}
	fmt.Fprintf(w, "8. same image, another app refused (compose hash %s is not the reference value): %v\n", otherID.ComposeHash, err)

	// The other app again, now hiding its event log: RTMR3 still holds
	// its app, and without the log no claim proves which app it is.
	c = &agent.Client{Quoter: other, CCEL: other}
	got, err = c.GetResource(ctx, k.url, demoResource)
	if err == nil {
		return fmt.Errorf("demo: the TD running another app received %d bytes by omitting its event log", len(got))
	}
	if !errors.Is(err, agent.ErrKBS) {
		return fmt.Errorf("demo: other app without its log: %w", err)
	}
	fmt.Fprintf(w, "9. the same app omitting its event log refused (a pinned compose hash with no claim to match fails): %v\n", err)
	fmt.Fprintf(w, "demo complete: the secret went only to the TD whose measurements and app match (simulated hardware, SIMULATOR root trusted)\n")
	return nil
}
