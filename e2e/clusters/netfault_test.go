package clusters

import (
	"strings"
	"testing"
)

// The cut covers both directions for the pods (FORWARD) and for the node
// itself (OUTPUT to the address, INPUT from it), each answered by a reset;
// a rule on the node's OUTPUT with the address as source could never
// match (the node sends from its own address).
func TestCutOff(t *testing.T) {
	var got []string
	for _, r := range CutOff("172.30.255.200") {
		got = append(got, strings.Join(r, " "))
	}
	want := []string{
		"FORWARD -d 172.30.255.200 -p tcp -j REJECT --reject-with tcp-reset",
		"FORWARD -s 172.30.255.200 -p tcp -j REJECT --reject-with tcp-reset",
		"OUTPUT -d 172.30.255.200 -p tcp -j REJECT --reject-with tcp-reset",
		"INPUT -s 172.30.255.200 -p tcp -j REJECT --reject-with tcp-reset",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	got = nil
	for _, r := range CutOffPort("172.30.0.3", 6443) {
		got = append(got, strings.Join(r, " "))
	}
	want = []string{
		"FORWARD -d 172.30.0.3 -p tcp --dport 6443 -j REJECT --reject-with tcp-reset",
		"FORWARD -s 172.30.0.3 -p tcp --sport 6443 -j REJECT --reject-with tcp-reset",
		"OUTPUT -d 172.30.0.3 -p tcp --dport 6443 -j REJECT --reject-with tcp-reset",
		"INPUT -s 172.30.0.3 -p tcp --sport 6443 -j REJECT --reject-with tcp-reset",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rules for one port:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, out := range [][]string{{"iptables: Bad rule (does a matching rule exist in that chain?)."}} {
		if !ruleAbsent(out) {
			t.Errorf("%q not read as a rule absent", out)
		}
	}
	if ruleAbsent([]string{"iptables: Permission denied"}) {
		t.Error("a refusal read as a rule absent")
	}
}
