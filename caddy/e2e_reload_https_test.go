package careq_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReloadHTTPSOnCareqNetwork: an HTTPS site on the careq network starts
// (HTTP/3 included) and loses nothing across reloads under load on fresh
// TLS connections, whose handed-over bytes are a TLS handshake.
func TestReloadHTTPSOnCareqNetwork(t *testing.T) {
	bind := "careq/127.0.0.1"
	if b := os.Getenv("CAREQ_E2E_BIND"); b != "" {
		bind = b
	}
	certFile, keyFile := selfSigned(t)
	port := freePort(t)
	cfg := func(marker string) string {
		return fmt.Sprintf(`{
	admin {$CAREQ_ADMIN}
	default_bind %s
	http_port %d
	shutdown_delay 200ms
}

localhost:%d {
	tls %s %s
	header X-Config %s
	respond "ok" 200
}
`, bind, freePort(t), port, certFile, keyFile, marker)
	}
	cfgs := [2]string{cfg("a"), cfg("b")}
	g := startGateway(t, cfgs[0], fmt.Sprintf("127.0.0.1:%d", port))
	url := fmt.Sprintf("https://localhost:%d/", port)

	stats := new(loadStats)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
			client := &http.Client{Transport: tr, Timeout: 15 * time.Second}
			for {
				select {
				case <-done:
					return
				default:
				}
				resp, err := client.Get(url)
				if err != nil {
					stats.fail(err.Error())
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != "ok" {
					stats.fail(fmt.Sprintf("%d %q", resp.StatusCode, b))
					continue
				}
				stats.ok.Add(1)
			}
		}()
	}
	for i := range 10 {
		time.Sleep(100 * time.Millisecond)
		if err := postLoad(g.admin, cfgs[(i+1)%2]); err != nil {
			close(done)
			wg.Wait()
			t.Fatalf("reload %d refused: %v", i+1, err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	close(done)
	wg.Wait()
	t.Logf("10 reloads over HTTPS: %s", stats)
	if stats.failed.Load() != 0 || stats.ok.Load() < 20 {
		t.Errorf("HTTPS across reloads: %s", stats)
		for _, l := range strings.Split(g.logs.String(), "\n") {
			if strings.Contains(l, "tls") || strings.Contains(l, "certificate") {
				t.Log(l)
			}
		}
	}
}

// selfSigned writes a self-signed certificate for localhost and its key.
func selfSigned(t *testing.T) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
