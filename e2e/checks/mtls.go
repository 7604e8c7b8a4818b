package checks

import (
	"fmt"
	"regexp"

	"github.com/meshconform/meshconform/fixtures/apps/meshapp/api"
)

// PlaintextOutcome is what the sample app reports of a plaintext call.
type PlaintextOutcome = api.PlaintextOutcome

// clientCertRefused is how a TLS server refuses a client that sent no
// certificate: TLS 1.3's certificate_required alert, TLS 1.2's
// bad_certificate or handshake_failure.
var clientCertRefused = regexp.MustCompile(`certificate required|bad certificate|handshake failure`)

// PlaintextRefusedByMTLS rejects a mesh that lets plaintext reach a
// workload under STRICT mTLS (PERMISSIVE, a server without TLS config, or
// one doing TLS without requiring client certificates): the plaintext call
// must have failed as gRPC Unavailable (the connection closed at the
// handshake), while the address accepted TCP (so it was no stale or dead
// address), answered TLS with exactly the workload certificate of
// wantServer, and refused a client without a certificate (so what refused
// the plaintext call is the server's mutual TLS). Any other error — an exec
// failure, a timeout, a refused connection — is not taken as proof.
func PlaintextRefusedByMTLS(o PlaintextOutcome, wantServer string) error {
	switch {
	case o.Answered:
		return fmt.Errorf("plaintext call to %s was answered (by pod %s): mTLS is not enforced", o.Addr, o.AnsweredBy)
	case !o.TCPConnected:
		return fmt.Errorf("plaintext call to %s: nothing accepted a TCP connection there, so its failure (%s) proves nothing about mTLS", o.Addr, o.Error)
	case o.Code != "Unavailable":
		return fmt.Errorf("plaintext call to %s failed with %s (%s), not at the connection handshake", o.Addr, o.Code, o.Error)
	case o.TLSServerIdentity != wantServer:
		return fmt.Errorf("plaintext call to %s failed (%s), but a TLS handshake there showed identity %q (%s), want %s", o.Addr, o.Error, o.TLSServerIdentity, o.TLSError, wantServer)
	case !clientCertRefused.MatchString(o.TLSError):
		return fmt.Errorf("plaintext call to %s failed (%s), but its TLS server accepted a client without a certificate (%q): TLS is not mutual", o.Addr, o.Error, o.TLSError)
	}
	return nil
}
