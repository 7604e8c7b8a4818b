package kvlist

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	got, err := Parse(" a=1, b = 2 ,,c=", "k", "v", true)
	if err != nil || len(got) != 3 || got["a"] != "1" || got["b"] != "2" || got["c"] != "" {
		t.Fatalf("%v %v", got, err)
	}
	for in, want := range map[string]string{"a": `"a" is not k=v`, "=1": `"=1" is not k=v`, "a=1,a=2": "k a given twice"} {
		if _, err := Parse(in, "k", "v", true); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
	if _, err := Parse("a=", "k", "v", false); err == nil {
		t.Error("an empty value accepted")
	}
}
