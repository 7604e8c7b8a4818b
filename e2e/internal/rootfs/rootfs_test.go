package rootfs

import (
	"strings"
	"testing"
)

func TestParseDeb822MirrorSkipsSecurity(t *testing.T) {
	src := "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\nTypes: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n"
	if got := parseDeb822Mirror(strings.NewReader(src)); got != "http://mirror.example/debian" {
		t.Errorf("got %q", got)
	}
}

func TestParseListMirror(t *testing.T) {
	src := "# comment\ndeb http://mirror.example/debian-security bookworm-security main\ndeb http://mirror.example/debian bookworm main\n"
	if got := parseListMirror(strings.NewReader(src)); got != "http://mirror.example/debian" {
		t.Errorf("got %q", got)
	}
}

func TestKeyDependsOnPackagesAndCustomization(t *testing.T) {
	a := Spec{Name: "node", Suite: "bookworm", Variant: "minbase", Include: []string{"systemd"}, CustomizeKey: "1"}
	b, c := a, a
	b.Include = []string{"systemd", "iptables"}
	c.CustomizeKey = "2"
	if a.Key() == b.Key() || a.Key() == c.Key() {
		t.Error("key ignores an input")
	}
}
