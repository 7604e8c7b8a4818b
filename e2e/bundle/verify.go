package bundle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Result is what Verify established of a bundle.
type Result struct {
	// Verdict is recomputed from the bundled Ginkgo reports; verdict.json
	// was found equal to it.
	Verdict Verdict
	// ManifestSHA256 is the hex SHA-256 of MANIFEST.sha256, which pins
	// every other file. A vendor publishes it beside the bundle; a
	// certifier compares it, which is what catches a bundle rewritten as a
	// whole (see the package comment).
	ManifestSHA256 string
	// Files counts the files the manifest covers: every file of the bundle
	// but MANIFEST.sha256 itself.
	Files int
}

// maxBuffered bounds each file Verify holds in memory to recompute the
// verdict (the manifest, verdict.json, Ginkgo reports), so a hostile
// bundle cannot exhaust it.
const maxBuffered = 256 << 20

// Verify reads the bundle at path in one streaming pass and checks it
// against its manifest and its verdict against its reports. Any error
// names the problem and the file.
func Verify(path string) (Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return Result{}, fmt.Errorf("verify: %w", err)
	}
	defer f.Close()
	res, err := verify(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return Result{}, fmt.Errorf("verify %s: %w", path, err)
	}
	return res, nil
}

func verify(r io.Reader) (Result, error) {
	a, err := readArchive(r)
	if err != nil {
		return Result{}, err
	}
	man, ok := a.kept[ManifestFile]
	if !ok {
		return Result{}, fmt.Errorf("%s is missing", ManifestFile)
	}
	lines, err := parseManifest(man)
	if err != nil {
		return Result{}, err
	}
	if err := a.matches(lines); err != nil {
		return Result{}, err
	}
	v, err := a.verdict()
	if err != nil {
		return Result{}, err
	}
	sum := sha256.Sum256(man)
	return Result{Verdict: v, ManifestSHA256: hex.EncodeToString(sum[:]), Files: len(lines)}, nil
}

// archive is what verify read of a bundle: every file's SHA-256, and the
// bytes of the manifest, the verdict and the reports.
type archive struct {
	sums map[string]string // file → hex SHA-256 of its content
	kept map[string][]byte // manifest, verdict and reports
}

// readArchive reads a bundle whole: one top folder, regular files and
// directories only, no entry twice, nothing but padding after the tar's
// end, and gzip's CRC checked.
func readArchive(r io.Reader) (archive, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return archive{}, fmt.Errorf("not a gzip file: %w", err)
	}
	tr := tar.NewReader(gz)
	a := archive{sums: map[string]string{}, kept: map[string][]byte{}}
	var top string
	seen := map[string]bool{} // every entry, relative to the top folder
	keepFile := func(rel string) bool { return rel == ManifestFile || rel == VerdictFile || isVerdictInput(rel) }
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return archive{}, fmt.Errorf("read archive: %w", err)
		}
		first, rel, err := splitEntry(hdr)
		if err != nil {
			return archive{}, err
		}
		if top == "" {
			top = first
		} else if first != top {
			return archive{}, fmt.Errorf("%s: two top folders, %s and %s: a bundle has one", hdr.Name, top, first)
		}
		if seen[rel] {
			// Extraction would keep one copy, the manifest check another.
			return archive{}, fmt.Errorf("%s appears twice in the archive", hdr.Name)
		}
		seen[rel] = true
		switch hdr.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
		default:
			return archive{}, fmt.Errorf("%s is a %s: a bundle holds only regular files and directories", hdr.Name, typeName(hdr.Typeflag))
		}
		if rel == "" {
			return archive{}, fmt.Errorf("%s is a file, not a top folder", hdr.Name)
		}
		h := sha256.New()
		var w io.Writer = h
		var buf limitedBuffer
		if keepFile(rel) {
			w = io.MultiWriter(h, &buf)
		}
		if _, err := io.Copy(w, tr); err != nil {
			return archive{}, fmt.Errorf("read %s: %w", rel, err)
		}
		a.sums[rel] = hex.EncodeToString(h.Sum(nil))
		if keepFile(rel) {
			a.kept[rel] = buf.Bytes()
		}
	}
	if top == "" {
		return archive{}, errors.New("empty archive")
	}
	// Reading to gzip's end checks its CRC; bytes after the tar's end are
	// hidden from tar -x, so a bundle has none but padding.
	if err := zeroesOnly(gz); err != nil {
		return archive{}, err
	}
	return a, nil
}

// matches rejects a bundle whose files are not exactly the manifest's: one
// listed and missing, changed, or added.
func (a archive) matches(lines []manifestLine) error {
	var problems []error
	listed := map[string]bool{}
	for _, l := range lines {
		listed[l.path] = true
		switch got, ok := a.sums[l.path]; {
		case !ok:
			problems = append(problems, fmt.Errorf("%s: listed in %s but missing from the bundle", l.path, ManifestFile))
		case got != l.sum:
			problems = append(problems, fmt.Errorf("%s: SHA-256 %s differs from %s's %s: the file was changed", l.path, got, ManifestFile, l.sum))
		}
	}
	var extra []string
	for rel := range a.sums {
		if rel != ManifestFile && !listed[rel] {
			extra = append(extra, rel)
		}
	}
	sort.Strings(extra)
	for _, rel := range extra {
		problems = append(problems, fmt.Errorf("%s: in the bundle but not in %s: the file was added", rel, ManifestFile))
	}
	return errors.Join(problems...)
}

// verdict recomputes the verdict from the bundled reports and rejects a
// bundled verdict that differs from it (edited apart from them).
func (a archive) verdict() (Verdict, error) {
	bundled, ok := a.kept[VerdictFile]
	if !ok {
		return Verdict{}, fmt.Errorf("%s is missing", VerdictFile)
	}
	reports := map[string][]byte{}
	for rel, data := range a.kept {
		if isVerdictInput(rel) {
			reports[rel] = data
		}
	}
	v := computeVerdict(reports)
	want, err := v.encode()
	if err != nil {
		return Verdict{}, err
	}
	if !bytes.Equal(bundled, want) {
		return Verdict{}, fmt.Errorf("%s differs from the verdict recomputed from the bundled reports (%s): it was edited apart from them",
			VerdictFile, firstDiff(bundled, want))
	}
	return v, nil
}

// splitEntry splits an entry's name into the top folder and the path under
// it, refusing names that would land outside the top folder on extraction
// or that name one file in two ways.
func splitEntry(hdr *tar.Header) (first, rel string, err error) {
	name := hdr.Name
	if hdr.Typeflag == tar.TypeDir {
		name = strings.TrimSuffix(name, "/")
	}
	switch {
	case name == "":
		return "", "", errors.New("an entry has an empty name")
	case strings.HasPrefix(name, "/"):
		return "", "", fmt.Errorf("%s: absolute path, outside the top folder", hdr.Name)
	case strings.Contains(name, `\`):
		return "", "", fmt.Errorf("%s: backslash in a path (a separator on Windows)", hdr.Name)
	}
	parts := strings.Split(name, "/")
	for _, p := range parts {
		switch p {
		case "..":
			return "", "", fmt.Errorf("%s: escapes the top folder (..)", hdr.Name)
		case "", ".":
			return "", "", fmt.Errorf("%s: not a clean path", hdr.Name)
		}
	}
	return parts[0], strings.Join(parts[1:], "/"), nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar, tar.TypeBlock:
		return "device"
	case tar.TypeFifo:
		return "FIFO"
	case tar.TypeXGlobalHeader:
		return "PAX global header"
	}
	return fmt.Sprintf("tar entry of type %q", t)
}

// manifestLine is one `<sha256>  <path>` line.
type manifestLine struct{ sum, path string }

// parseManifest reads the manifest strictly as Write writes it: lowercase
// hex, two spaces, clean paths, sorted, one line per file, final newline.
func parseManifest(data []byte) ([]manifestLine, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s is malformed: %s", ManifestFile, fmt.Sprintf(format, args...))
	}
	if len(data) == 0 {
		return nil, bad("empty")
	}
	if data[len(data)-1] != '\n' {
		return nil, bad("no final newline")
	}
	var lines []manifestLine
	for i, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		sum, p, ok := strings.Cut(l, "  ")
		if !ok || len(sum) != sha256.Size*2 || strings.Trim(sum, "0123456789abcdef") != "" {
			return nil, bad("line %d is not `<sha256>  <path>`: %q", i+1, l)
		}
		if _, rel, err := splitEntry(&tar.Header{Name: "top/" + p, Typeflag: tar.TypeReg}); err != nil || rel != p {
			return nil, bad("line %d: %q is not a clean path under the top folder", i+1, p)
		}
		if p == ManifestFile {
			return nil, bad("line %d lists the manifest itself", i+1)
		}
		if n := len(lines); n > 0 && p <= lines[n-1].path {
			return nil, bad("line %d: %s is out of order or listed twice", i+1, p)
		}
		lines = append(lines, manifestLine{sum: sum, path: p})
	}
	return lines, nil
}

// firstDiff points at the first line where two verdicts differ.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d: bundled `%s`, recomputed `%s`", i+1, clip(gl), clip(wl))
		}
	}
	return "same lines"
}

// clip shortens a JSON line for an error message.
func clip(s string) string {
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > 120 {
		return string(r[:120]) + "…"
	}
	return s
}

// zeroesOnly reads what follows the tar archive to the end of the gzip
// stream and refuses anything but zero padding.
func zeroesOnly(r io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		for _, b := range buf[:n] {
			if b != 0 {
				return errors.New("data after the end of the tar archive")
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
	}
}

// limitedBuffer is a bytes.Buffer that refuses to grow past maxBuffered.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxBuffered {
		return 0, fmt.Errorf("larger than %d MiB", maxBuffered>>20)
	}
	return b.Buffer.Write(p)
}
