package debian

import (
	"strings"
	"testing"
)

const show = `Package: docker-registry
Version: 2.8.2+ds1-1
Architecture: amd64
Description: Docker toolset to pack, ship, store, and deliver content
 This is a continuation line: Version: 9.9
SHA256: a9bd06c0e006854608f8469b4371743f40604ad90975532bb3b7ceeb72fe2913

Package: libc6
Version: 2.36-9+deb12u14
Architecture: amd64
SHA256: ba4f88f73dbc3ae9055f3c20f4523bfdbaf1ad13ff95e258924f77d20b4fbedf
`

func TestParseShow(t *testing.T) {
	pkgs, err := ParseShow(strings.NewReader(show))
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 2 {
		t.Fatalf("got %d packages, want 2: %+v", len(pkgs), pkgs)
	}
	if p := pkgs[0]; p.Name != "docker-registry" || p.Version != "2.8.2+ds1-1" || p.Arch != "amd64" || !strings.HasPrefix(p.SHA256, "a9bd06") {
		t.Errorf("first package parsed as %+v", p)
	}
	if p := pkgs[1]; p.Name != "libc6" || p.Version != "2.36-9+deb12u14" {
		t.Errorf("second package parsed as %+v", p)
	}
}

// A stanza without a digest cannot be pinned: refuse it rather than cache
// an image under a key that does not say what is in it.
func TestParseShowRefusesStanzaWithoutDigest(t *testing.T) {
	if _, err := ParseShow(strings.NewReader("Package: x\nVersion: 1\n")); err == nil {
		t.Fatal("accepted a package without SHA256")
	}
}
