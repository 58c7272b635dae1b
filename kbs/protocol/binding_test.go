package protocol

import (
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"

	"github.com/tdproof/tdproof/jcs"
)

// The regression vector of Trustee's attestation-service (lib.rs).
func TestRFC8785Vector(t *testing.T) {
	c, err := jcs.Canonicalize([]byte(`{"b":1,"a":"test","c":{"d":"e"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(c) != `{"a":"test","b":1,"c":{"d":"e"}}` {
		t.Fatalf("canonical = %s", c)
	}
	sum := sha512.Sum384(c)
	const want = "e71ce8e70d814ba6639c3612ebee0ff1f76f650f8dbb5e47157e0f3f525cd22c4597480a186427c813ca941da78870c3"
	if got := hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("sha384 = %s, want %s", got, want)
	}
}

func padded(s string) [64]byte {
	var out [64]byte
	sum := sha512.Sum384([]byte(s))
	copy(out[:], sum[:])
	return out
}

const (
	testX = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
	testY = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
)

func TestReportDataHandBuilt(t *testing.T) {
	ec := JWK{Kty: KtyEC, Crv: CrvP256, Alg: AlgECDHESA256KW, X: testX, Y: testY}
	rsaKey := JWK{Kty: KtyRSA, Alg: AlgRSAOAEP256, N: "0vx7agoebGcQSuu", E: "AQAB"}
	nonce := "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80="
	cases := []struct {
		name, add string
		key       JWK
		canonical string
	}{
		{"ec-empty", "", ec,
			`{"additional-evidence":"","nonce":"` + nonce + `","tee-pubkey":{"alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC","x":"` + testX + `","y":"` + testY + `"}}`},
		{"ec-device", `{"gpu0":"<é>"}`, ec,
			`{"additional-evidence":"{\"gpu0\":\"<é>\"}","nonce":"` + nonce + `","tee-pubkey":{"alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC","x":"` + testX + `","y":"` + testY + `"}}`},
		{"rsa", "", rsaKey,
			`{"additional-evidence":"","nonce":"` + nonce + `","tee-pubkey":{"alg":"RSA-OAEP-256","e":"AQAB","kty":"RSA","n":"0vx7agoebGcQSuu"}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReportData(nonce, c.key, c.add)
			if err != nil {
				t.Fatal(err)
			}
			if want := padded(c.canonical); got != want {
				t.Fatalf("report data\n got %x\nwant %x", got, want)
			}
			for _, b := range got[48:] {
				if b != 0 {
					t.Fatal("padding not zero")
				}
			}
			j, err := RuntimeDataJSON(nonce, c.key, c.add)
			if err != nil || string(j) != c.canonical {
				t.Fatalf("runtime data JSON %s, %v", j, err)
			}
		})
	}
}

// A key received with extra members and in another member order binds
// exactly as the server rebuilds it: from the variant's fields only.
func TestReportDataFromWireKey(t *testing.T) {
	var k JWK
	wire := `{"y":"` + testY + `","use":"enc","x":"` + testX + `","kid":"1","alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC"}`
	if err := json.Unmarshal([]byte(wire), &k); err != nil {
		t.Fatal(err)
	}
	got, err := ReportData("n", k, "")
	if err != nil {
		t.Fatal(err)
	}
	want := padded(`{"additional-evidence":"","nonce":"n","tee-pubkey":{"alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC","x":"` + testX + `","y":"` + testY + `"}}`)
	if got != want {
		t.Fatal("binding differs from the hand-built value")
	}
	dev, err := DeviceRuntimeDataJSON("n", k)
	if err != nil || string(dev) != `{"nonce":"n","tee-pubkey":{"alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC","x":"`+testX+`","y":"`+testY+`"}}` {
		t.Fatalf("device runtime data %s, %v", dev, err)
	}
}

func TestReportDataBadKey(t *testing.T) {
	_, err := ReportData("n", JWK{Kty: "oct"}, "")
	if !errors.Is(err, ErrKey) {
		t.Fatalf("err = %v, want ErrKey", err)
	}
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("err %T is not *Error", err)
	}
}

func TestReportDataDiffers(t *testing.T) {
	k := JWK{Kty: KtyEC, Crv: CrvP256, Alg: AlgECDHESA256KW, X: testX, Y: testY}
	a, _ := ReportData("n1", k, "")
	b, _ := ReportData("n2", k, "")
	k.X = testY
	c, _ := ReportData("n1", k, "")
	if a == b || a == c {
		t.Fatal("binding does not depend on nonce and key")
	}
}
