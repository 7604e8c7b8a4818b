// Package bundle packs a run's artifacts directory into a results tarball a
// platform vendor hands over to certify Istio multicluster on its clusters
// (as Sonobuoy's results tarball does for Kubernetes), and verifies one.
//
// A bundle is meshconform-results-<time>.tar.gz with every entry under
// meshconform-results-<time>/: the artifacts directory as the harness wrote
// it (Ginkgo reports, phases, dumps, logs, manifests…) less credentials and
// scratch files, plus command.txt (the command that reproduces the run),
// verdict.json (the certification verdict, computed from the bundled
// <suite>/ginkgo.json reports) and MANIFEST.sha256 (sha256sum lines for
// every other file). At any depth, kubeconfig/ directories, *.kubeconfig
// files (credentials), *.tmp files and earlier meshconform-results-*.tar.gz
// stay out. Write refuses artifacts in which any file to be bundled holds a
// PEM private key or a kubeconfig credential (see SecretError), and
// artifacts with a symlink: a link may point anywhere (~/.kube/config), and
// dropping it silently would hide a file the run wrote, so the caller is
// told to replace or remove it. The archive is deterministic: entries
// sorted, modes 0644 and 0755, owner 0, every mtime Options.Now.
//
// What Verify proves, and what it does not:
//
//   - Tamper evidence: any change to a bundled file, any file added or
//     removed, without rewriting MANIFEST.sha256 accordingly, is refused,
//     and the refusal names the file.
//   - A verdict that cannot be edited apart from the reports: verdict.json
//     must equal the verdict recomputed from the bundled Ginkgo reports, so
//     turning "not certified" into "certified" takes rewriting the reports.
//   - It is not a signature. Whoever rewrites reports, verdict and manifest
//     together makes a bundle Verify accepts. Only the manifest's digest
//     (Result.ManifestSHA256), published by the vendor apart from the
//     bundle, ties a bundle to the run the vendor vouched for: compare it.
//   - It says nothing of whether the run itself was honest (the suites'
//     code, the clusters); the reports are taken as Ginkgo wrote them.
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
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// Options says what to bundle and where.
type Options struct {
	ArtifactsDir string // the run's artifacts directory (MESHCONFORM_ARTIFACTS)
	OutDir       string // where the .tar.gz goes; may be ArtifactsDir itself
	// Command is the exact command that reproduces the run. Empty keeps the
	// artifacts' own command.txt; with neither, Write fails: a certification
	// nobody can reproduce is worth little.
	Command string
	// Product is a checked PRODUCT.yaml (ReadProduct) to carry, replacing
	// one in the artifacts; nil bundles none but the artifacts'.
	Product []byte
	// Now names the bundle and is the mtime of every entry, which makes the
	// archive a function of the artifacts and Options. Zero means time.Now.
	Now time.Time
}

// Files the bundle adds at its top. An artifacts file of the same name is
// replaced (command.txt is kept when Options.Command is empty).
const (
	CommandFile  = "command.txt"
	VerdictFile  = "verdict.json"
	ManifestFile = "MANIFEST.sha256"
)

// namePrefix starts every bundle's file and top folder name.
const namePrefix = "meshconform-results-"

// topName is the bundle's top folder for a time, e.g.
// meshconform-results-20261122T171308Z; the file adds .tar.gz.
func topName(now time.Time) string { return namePrefix + now.UTC().Format("20060102T150405Z") }

// entry is one archive member: a directory, a file of the artifacts (src)
// or a file the bundle adds (data).
type entry struct {
	rel  string // slash path under the top folder
	dir  bool
	src  string
	data []byte
	size int64
	sum  [sha256.Size]byte
}

// Write bundles opts.ArtifactsDir into <OutDir>/meshconform-results-<time>.tar.gz
// and returns its path and the verdict it holds. Nothing is written unless
// every file passed the secret guard; the archive appears under its final
// name only once complete.
func Write(opts Options) (string, Verdict, error) {
	if opts.ArtifactsDir == "" || opts.OutDir == "" {
		return "", Verdict{}, errors.New("bundle: Options.ArtifactsDir and Options.OutDir are required")
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	// Tar keeps whole seconds; truncating here keeps names and mtimes equal.
	now = now.UTC().Truncate(time.Second)
	top := topName(now)

	root, err := filepath.EvalSymlinks(opts.ArtifactsDir) // the root may be a link, nothing under it
	if err != nil {
		return "", Verdict{}, fmt.Errorf("bundle %s: %w", opts.ArtifactsDir, err)
	}
	entries, err := collect(root, opts.Command == "")
	if err != nil {
		return "", Verdict{}, fmt.Errorf("bundle %s: %w", opts.ArtifactsDir, err)
	}
	if opts.Command != "" {
		cmd := strings.TrimRight(opts.Command, "\n") + "\n"
		entries = append(entries, entry{rel: CommandFile, data: []byte(cmd)})
	} else if !hasFile(entries, CommandFile) {
		return "", Verdict{}, fmt.Errorf("bundle %s: no command: set Options.Command or write %s in the artifacts", opts.ArtifactsDir, CommandFile)
	}
	if opts.Product != nil {
		entries = slices.DeleteFunc(entries, func(e entry) bool { return e.rel == ProductFile })
		entries = append(entries, entry{rel: ProductFile, data: opts.Product})
	}

	// Read every file once before writing anything: secret guard, size,
	// digest, and the reports for the verdict.
	reports := map[string][]byte{}
	for i := range entries {
		if err := inspect(&entries[i], reports); err != nil {
			return "", Verdict{}, fmt.Errorf("bundle %s: %w", opts.ArtifactsDir, err)
		}
	}
	verdict := computeVerdict(reports)
	vj, err := verdict.encode()
	if err != nil {
		return "", Verdict{}, err
	}
	// The verdict quotes failure messages: it goes through the guard too.
	ve := entry{rel: VerdictFile, data: vj}
	if err := inspect(&ve, reports); err != nil {
		return "", Verdict{}, fmt.Errorf("bundle %s: %w", opts.ArtifactsDir, err)
	}
	entries = append(entries, ve)
	sort.Slice(entries, func(i, j int) bool { return entries[i].rel < entries[j].rel })
	man := manifest(entries)
	entries = append(entries, entry{rel: ManifestFile, data: man, size: int64(len(man))})
	sort.Slice(entries, func(i, j int) bool { return entries[i].rel < entries[j].rel })

	out := filepath.Join(opts.OutDir, top+".tar.gz")
	if err := writeArchive(out, top, now, entries); err != nil {
		return "", Verdict{}, fmt.Errorf("bundle %s: write %s: %w", opts.ArtifactsDir, out, err)
	}
	return out, verdict, nil
}

// collect walks the artifacts and lists what goes into the bundle, minus
// the exclusions. keepCommand keeps the artifacts' own command.txt.
func collect(root string, keepCommand bool) ([]entry, error) {
	var entries []entry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if excluded(d.Name()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if strings.ContainsAny(rel, "\\\n\r") {
			// sha256sum would escape such a name, and Windows reads a
			// backslash as a separator: refuse rather than write a bundle
			// other tools read differently.
			return fmt.Errorf("%q: names with a backslash or line break cannot go in a bundle", rel)
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s is a symlink: a bundle holds no links (one may point at credentials); replace it with the file or remove it", rel)
		case d.IsDir():
			entries = append(entries, entry{rel: rel, dir: true})
			return nil
		case !d.Type().IsRegular():
			return fmt.Errorf("%s is not a regular file (%s)", rel, d.Type())
		}
		switch rel {
		case VerdictFile, ManifestFile:
			return nil // the bundle's own
		case CommandFile:
			if !keepCommand {
				return nil
			}
		}
		entries = append(entries, entry{rel: rel, src: p})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list artifacts: %w", err)
	}
	return entries, nil
}

// excluded tells what never goes into a bundle, at any depth (the faults
// and upgrade runs nest their own artifacts, kubeconfig/ included):
// kubeconfigs (credentials), scratch files and earlier bundles.
func excluded(name string) bool {
	if name == "kubeconfig" || strings.HasSuffix(name, ".kubeconfig") || strings.HasSuffix(name, ".tmp") {
		return true
	}
	if ok, _ := path.Match(namePrefix+"*.tar.gz", name); ok {
		return true
	}
	return false
}

func hasFile(entries []entry, rel string) bool {
	for _, e := range entries {
		if e.rel == rel && !e.dir {
			return true
		}
	}
	return false
}

// inspect reads one file entry through the secret guard and records its
// size and digest; Ginkgo reports are kept for the verdict.
func inspect(e *entry, reports map[string][]byte) error {
	if e.dir {
		return nil
	}
	var r io.Reader
	if e.src == "" {
		r = bytes.NewReader(e.data)
	} else {
		f, err := os.Open(e.src)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	h := sha256.New()
	var report bytes.Buffer
	w := io.Writer(h)
	if isVerdictInput(e.rel) {
		w = io.MultiWriter(h, &report)
	}
	cr := &countingReader{r: io.TeeReader(r, w)}
	line, what, err := scanSecrets(cr)
	if err != nil {
		return fmt.Errorf("read %s: %w", e.rel, err)
	}
	if line > 0 {
		return &SecretError{Path: e.rel, Line: line, What: what}
	}
	// scanSecrets reads to the end when it finds nothing; draining anyway
	// keeps size and digest whole should it ever stop early.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return fmt.Errorf("read %s: %w", e.rel, err)
	}
	e.size = cr.n
	copy(e.sum[:], h.Sum(nil))
	if isVerdictInput(e.rel) {
		reports[e.rel] = report.Bytes()
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// manifest is sha256sum's output for every file entry, sorted by path.
func manifest(entries []entry) []byte {
	var b bytes.Buffer
	for _, e := range entries {
		if !e.dir {
			fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(e.sum[:]), e.rel)
		}
	}
	return b.Bytes()
}

// writeArchive writes the sorted entries as a deterministic tar.gz: the
// same entries and time give the same bytes. It writes a temporary file
// beside out and renames it, so out is never a partial bundle.
func writeArchive(out, top string, now time.Time, entries []entry) (err error) {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	gz := gzip.NewWriter(bw) // header left zero: no name, no mtime
	tw := tar.NewWriter(gz)
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: now})
	}
	if err := dir(top); err != nil {
		return err
	}
	for _, e := range entries {
		name := top + "/" + e.rel
		if e.dir {
			if err := dir(name); err != nil {
				return err
			}
			continue
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: e.size, ModTime: now}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write %s: %w", e.rel, err)
		}
		if err := copyEntry(tw, e); err != nil {
			return err
		}
	}
	for _, c := range []io.Closer{tw, gz} {
		if err := c.Close(); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}

// copyEntry writes a file's content and checks it is what the guard read:
// a file the run still writes to would otherwise reach the bundle unread
// or disagree with its manifest line.
func copyEntry(w io.Writer, e entry) error {
	if e.src == "" {
		_, err := w.Write(e.data)
		return err
	}
	f, err := os.Open(e.src)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(f, e.size))
	if err != nil {
		return fmt.Errorf("write %s: %w", e.rel, err)
	}
	if n != e.size || !bytes.Equal(h.Sum(nil), e.sum[:]) {
		return fmt.Errorf("%s changed while being bundled; bundle after the run has ended", e.rel)
	}
	return nil
}
