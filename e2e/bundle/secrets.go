package bundle

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// SecretError is the secret guard refusing a file. Write returns it (wrapped)
// before it creates anything. The guard knows the shapes of a PEM private
// key and of kubeconfig credentials only: it cannot see a bearer token in
// a log line, so what the harness dumps must stay free of those.
type SecretError struct {
	Path string // the file, relative to the artifacts directory
	Line int    // 1-based line of the first secret
	What string // what the line looks like, e.g. "a PEM private key"
}

func (e *SecretError) Error() string {
	return fmt.Sprintf("refusing to bundle %s: line %d holds %s; secrets never go into a bundle (remove or redact the file)",
		e.Path, e.Line, e.What)
}

// pemKey ends the BEGIN and END lines of every PEM private key: RSA, EC,
// PKCS#8, encrypted or not.
var pemKey = []byte("PRIVATE KEY-----")

// scanSecrets reads r to its end and returns the first line holding a PEM
// private key or a kubeconfig credential, or line 0 if there is none. It
// streams: logs in dump/ and logs/ can be large, and long lines (a JSON
// document on one line, a PNG) are read in fragments.
func scanSecrets(r io.Reader) (line int, what string, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		kc    kubeconfigScan
		carry []byte // end of the line's previous fragment: a marker may straddle two
		cont  bool   // this fragment continues a line longer than the buffer
	)
	for line = 1; ; {
		frag, isPrefix, err := br.ReadLine()
		if errors.Is(err, io.EOF) {
			return 0, "", nil
		}
		if err != nil {
			return 0, "", err
		}
		buf := append(carry, frag...)
		if bytes.Contains(buf, pemKey) {
			return line, "a PEM private key", nil
		}
		// Kubeconfig keys start a line; a continuation fragment starts none.
		if !cont {
			if what := kc.line(frag); what != "" {
				return line, what, nil
			}
		}
		carry = carry[:0]
		if isPrefix {
			carry = append(carry, buf[max(0, len(buf)-len(pemKey)+1):]...)
		} else {
			line++
		}
		cont = isPrefix
	}
}

// kubeconfigScan follows a file line by line for what makes a kubeconfig a
// credential: a client key anywhere, or a token (or password) in a user
// under users:. It reads YAML and indented JSON (kubectl config view -o
// json) alike. Values kubectl prints instead of secrets (DATA+OMITTED,
// REDACTED) are no credential, so a dumped `kubectl config view` passes.
type kubeconfigScan struct {
	inUsers bool
	indent  int // indentation of the users: key
}

// userCredentials are the keys of a kubeconfig user that hold a secret
// itself rather than a path to one.
var userCredentials = map[string]bool{
	"token": true, "password": true,
	"id-token": true, "refresh-token": true, "access-token": true, // auth-provider config
}

func (k *kubeconfigScan) line(l []byte) string {
	trimmed := bytes.TrimLeft(l, " \t")
	if len(trimmed) == 0 || trimmed[0] == '#' {
		return ""
	}
	indent := len(l) - len(trimmed)
	// The users block ends at the first line indented no deeper than its
	// key, except YAML's list items, which may sit at the key's own depth.
	if k.inUsers && (indent < k.indent || indent == k.indent && trimmed[0] != '-') {
		k.inUsers = false
	}
	key, value, ok := splitKey(trimmed)
	if !ok {
		return ""
	}
	switch {
	case key == "client-key-data" && !placeholder(value):
		return "a kubeconfig client key (client-key-data)"
	case key == "users" && (len(value) == 0 || string(value) == "["):
		k.inUsers, k.indent = true, indent
	case k.inUsers && userCredentials[key] && !placeholder(value):
		return "a kubeconfig user credential (" + key + " under users)"
	}
	return ""
}

// splitKey splits `key: value`, `- key: value` or `"key": value,` into its
// key and raw value. A colon not followed by a blank (a URL, a time) is no
// key.
func splitKey(b []byte) (key string, value []byte, ok bool) {
	for bytes.HasPrefix(b, []byte("- ")) {
		b = bytes.TrimLeft(b[2:], " \t")
	}
	var rest []byte
	if len(b) > 0 && b[0] == '"' {
		end := bytes.IndexByte(b[1:], '"')
		if end < 0 {
			return "", nil, false
		}
		key, rest = string(b[1:1+end]), b[2+end:]
	} else {
		i := bytes.IndexByte(b, ':')
		if i < 0 {
			return "", nil, false
		}
		key, rest = string(b[:i]), b[i:]
	}
	if len(rest) == 0 || rest[0] != ':' || len(rest) > 1 && rest[1] != ' ' && rest[1] != '\t' {
		return "", nil, false
	}
	value = bytes.TrimRight(bytes.TrimSpace(rest[1:]), ",")
	return key, bytes.TrimSpace(value), true
}

// placeholder tells whether a value stands in for a secret without being
// one. An empty value is not a placeholder: in YAML the secret may follow
// on the next line.
func placeholder(v []byte) bool {
	switch string(bytes.Trim(v, `"'`)) {
	case "DATA+OMITTED", "REDACTED", "null", "~":
		return true
	case "":
		return len(v) > 0 // "" or '' quoted: empty; bare: a value may follow
	}
	return false
}
