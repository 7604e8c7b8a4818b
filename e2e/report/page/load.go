package page

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/meshconform/meshconform/e2e/report"
)

// Load reads a run's artifacts directory: every <suite>/ginkgo.json (as
// the Makefile writes them), phases.json, and the links to what is there.
// The verdict is left empty (derived from the specs unless the caller sets
// it). A missing phases.json or suite report is no error — a run that
// stopped early still gets its page — but an unreadable one is.
func Load(artifactsDir string) (Input, error) {
	var in Input
	if st, err := os.Stat(artifactsDir); err != nil {
		return in, fmt.Errorf("artifacts directory: %w", err)
	} else if !st.IsDir() {
		return in, fmt.Errorf("artifacts directory %s is not a directory", artifactsDir)
	}
	reports, err := filepath.Glob(filepath.Join(artifactsDir, "*", "ginkgo.json"))
	if err != nil {
		return in, fmt.Errorf("find Ginkgo reports: %w", err)
	}
	for _, path := range reports {
		var rs []types.Report // Ginkgo's JSON report is an array of suites
		if err := readJSON(path, &rs); err != nil {
			return in, err
		}
		in.Suites = append(in.Suites, rs...)
	}
	var doc report.Document
	switch err := readJSON(filepath.Join(artifactsDir, "phases.json"), &doc); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return in, err
	default:
		in.Phases, in.Figures, in.CPU = doc.Phases, doc.Figures, doc.CPU
	}
	in.Links, err = links(artifactsDir)
	return in, err
}

func readJSON(path string, v any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// linked are the artifacts the page links to, as globs relative to the
// artifacts directory, each with how the link reads; a pattern ending in /
// matches folders only.
var linked = []struct{ glob, label string }{
	{"phases.json", "phases and figures (JSON)"},
	{"phases.svg", "phase time line (SVG)"},
	{"build.log", "build log"},
	{"*/junit.xml", "JUnit report"},
	{"*/ginkgo.json", "Ginkgo report (JSON)"},
	{"*/timeline.svg", "upgrade time line (SVG)"},
	{"dump/*/", "state dump"},
	{"logs/", "cluster logs (kind export)"},
}

// links lists the linked artifacts that exist, in the order of linked.
func links(dir string) ([]Link, error) {
	var out []Link
	for _, l := range linked {
		wantDir := strings.HasSuffix(l.glob, "/")
		matches, err := filepath.Glob(filepath.Join(dir, filepath.FromSlash(strings.TrimSuffix(l.glob, "/"))))
		if err != nil {
			return nil, fmt.Errorf("find %s: %w", l.glob, err)
		}
		for _, m := range matches {
			st, err := os.Stat(m)
			if err != nil || st.IsDir() != wantDir {
				continue
			}
			rel, err := filepath.Rel(dir, m)
			if err != nil {
				return nil, fmt.Errorf("link %s: %w", m, err)
			}
			rel = filepath.ToSlash(rel)
			if wantDir {
				rel += "/"
			}
			// A URL, not a path: a name with '#', '?' or ':' must not
			// turn into a fragment, a query or a scheme.
			href := (&url.URL{Path: rel}).String()
			out = append(out, Link{Label: l.label + ": " + rel, Href: href})
		}
	}
	return out, nil
}

// ReportsUnder reads every ginkgo.json anywhere under root (the main job's,
// the seeded-fault and upgrade suites' in their own folders, make byo's),
// in path order, for a digest of a whole CI run.
func ReportsUnder(root string) (Input, error) {
	var in Input
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || d.Name() != "ginkgo.json" {
			return nil
		}
		var rs []types.Report
		if err := readJSON(path, &rs); err != nil {
			return err
		}
		in.Suites = append(in.Suites, rs...)
		return nil
	})
	return in, err
}
