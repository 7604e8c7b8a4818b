package main

import "testing"

// command.txt must reproduce the run: every setting once, quoted where a
// shell would split it, and the artifacts directory (the run's own) left
// out so a rerun does not overwrite the bundle's source.
func TestReproduce(t *testing.T) {
	env := []string{"HOME=/root", "MESHCONFORM_MESH=existing", "MESHCONFORM_ARTIFACTS=/tmp/a", "MESHCONFORM_CONTEXTS=cluster1=a b"}
	got := reproduce(env, []string{"/usr/bin/meshconform", "test", "--label-filter", "conformance && !mtls"})
	want := `MESHCONFORM_MESH=existing 'MESHCONFORM_CONTEXTS=cluster1=a b' meshconform test --label-filter 'conformance && !mtls'`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if shellQuote("it's") != `'it'\''s'` || shellQuote("") != "''" {
		t.Fatal("shellQuote")
	}
}
