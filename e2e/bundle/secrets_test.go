package bundle

import (
	"strings"
	"testing"
)

func TestScanSecrets(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		line     int // 0: nothing to refuse
	}{
		// Broken inputs: credentials.
		{"RSA key", "a\n-----BEGIN RSA PRIVATE KEY-----\n", 2},
		{"encrypted PKCS#8 key", "-----BEGIN ENCRYPTED PRIVATE KEY-----", 1},
		{"key inside a JSON string", `{"key":"-----BEGIN EC PRIVATE KEY-----\nMHc"}`, 1},
		{"client key", "users:\n- name: a\n  user:\n    client-key-data: LS0t\n", 4},
		{"client key anywhere", "client-key-data: LS0t\n", 1},
		{"token in a user", "users:\n- name: a\n  user:\n    token: abc\n", 4},
		{"token, list at key depth", "users:\n  - name: a\n    user:\n      token: abc\n", 4},
		{"token on the next line", "users:\n- user:\n    token:\n      abc\n", 3},
		{"password in a user", "users:\n- user:\n    password: hunter2\n", 3},
		{"auth-provider id-token", "users:\n- user:\n    auth-provider:\n      config:\n        id-token: eyJ\n", 5},
		{"JSON kubeconfig key", "{\n  \"users\": [\n    {\n      \"user\": {\n        \"client-key-data\": \"LS0t\"\n", 5},
		{"JSON kubeconfig token", "{\n  \"users\": [\n    {\n      \"user\": {\n        \"token\": \"abc\",\n", 5},
		// Good inputs: nothing secret.
		{"certificate only", "-----BEGIN CERTIFICATE-----\nMIIB\n", 0},
		{"public key", "-----BEGIN PUBLIC KEY-----\n", 0},
		{"redacted kubectl config view", "users:\n- name: a\n  user:\n    client-key-data: DATA+OMITTED\n    token: REDACTED\n", 0},
		{"token outside users", "serviceAccount:\n  token: projected\n", 0},
		{"token after the users block", "users:\n- name: a\n  user: {}\ncontexts:\n- context:\n    token: x\n", 0},
		{"users mentioned in a log", "I1122 users: 3\ntoken: abc\n", 0},
		{"token with a colon in a URL", "users:\n- user:\n    tokenURL:https://x\n", 0},
		{"empty quoted token", "users:\n- user:\n    token: \"\"\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line, what, err := scanSecrets(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if line != tc.line {
				t.Errorf("line %d (%q), want %d", line, what, tc.line)
			}
		})
	}
}

// Broken input: a private key marker split across the reader's buffer on
// a line far longer than it (a minified JSON dump).
func TestScanSecretsLongLine(t *testing.T) {
	for _, pad := range []int{64<<10 - 5, 64<<10 - 16, 64 << 10, 200 << 10} {
		in := "ok\n" + strings.Repeat("x", pad) + "-----BEGIN PRIVATE KEY-----" + strings.Repeat("y", 100<<10) + "\n"
		if line, _, _ := scanSecrets(strings.NewReader(in)); line != 2 {
			t.Errorf("pad %d: line %d, want 2", pad, line)
		}
	}
	// The continuation of a long line starts no kubeconfig key: here the
	// second 64 KiB fragment begins "    token: abc", inside users:. The
	// key on the line after it is still counted as line 4.
	in := "users:\n- user:\n    x: " + strings.Repeat("z", 64<<10-7) + "    token: abc\n-----BEGIN PRIVATE KEY-----\n"
	if line, what, _ := scanSecrets(strings.NewReader(in)); line != 4 || what != "a PEM private key" {
		t.Errorf("line %d (%s), want 4 (the key, not the fragment)", line, what)
	}
}
