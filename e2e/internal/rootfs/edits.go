package rootfs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// Edits are the changes made to a debootstrapped tree, as data, applied in
// the order of the fields. Paths are relative to the tree.
type Edits struct {
	// Copy puts files of this machine into the tree: destination → source.
	// Key covers each source's content.
	Copy map[string]CopiedFile `json:",omitempty"`
	// Remove deletes what each glob matches.
	Remove []string `json:",omitempty"`
	// Append adds text to the end of files (created if absent).
	Append map[string]string `json:",omitempty"`
	// Link makes symbolic links: link → target.
	Link map[string]string `json:",omitempty"`
	// LinkEach links every entry of a directory of the tree into another:
	// destination directory → source directory (both relative).
	LinkEach map[string]string `json:",omitempty"`
	// Dirs are created (0755); Chmod sets modes of existing paths.
	Dirs  []string               `json:",omitempty"`
	Chmod map[string]os.FileMode `json:",omitempty"`
	// Chroot runs commands inside the tree, in order.
	Chroot [][]string `json:",omitempty"`
	// Write replaces files with content (mode 0444 when read-only).
	Write map[string]WrittenFile `json:",omitempty"`
}

// CopiedFile is a file of this machine and the mode it gets in the tree.
// Its content, not where it sits on this machine, is in the key.
type CopiedFile struct {
	Src  string `json:"-"`
	Mode os.FileMode
}

// WrittenFile is content and the mode it gets.
type WrittenFile struct {
	Data string
	Mode os.FileMode
}

// sourceDigests are the digests of what Copy copies (unreadable sources
// digest as the error, which Apply reports).
func (e Edits) sourceDigests() map[string]string {
	out := map[string]string{}
	for dst, f := range e.Copy {
		raw, err := os.ReadFile(f.Src)
		if err != nil {
			out[dst] = "unreadable: " + err.Error()
			continue
		}
		sum := sha256.Sum256(raw)
		out[dst] = hex.EncodeToString(sum[:])
	}
	return out
}

// Apply makes the edits in tree.
func (e Edits) Apply(ctx context.Context, tree string, log io.Writer) error {
	at := func(rel string) string { return filepath.Join(tree, filepath.FromSlash(rel)) }
	for _, dst := range slices.Sorted(maps.Keys(e.Copy)) {
		f := e.Copy[dst]
		raw, err := os.ReadFile(f.Src)
		if err != nil {
			return err
		}
		if err := writeFile(at(dst), raw, f.Mode); err != nil {
			return err
		}
	}
	for _, g := range e.Remove {
		matches, _ := filepath.Glob(at(g))
		for _, m := range matches {
			if err := os.RemoveAll(m); err != nil {
				return err
			}
		}
	}
	for _, p := range slices.Sorted(maps.Keys(e.Append)) {
		if err := appendFile(at(p), e.Append[p]); err != nil {
			return err
		}
	}
	links := map[string]string{}
	for l, t := range e.Link {
		links[l] = t
	}
	for dstDir, srcDir := range e.LinkEach {
		entries, _ := os.ReadDir(at(srcDir))
		for _, en := range entries {
			links[dstDir+"/"+en.Name()] = "/" + srcDir + "/" + en.Name()
		}
	}
	for _, l := range slices.Sorted(maps.Keys(links)) {
		dst := at(l)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		_ = os.Remove(dst)
		if err := os.Symlink(links[l], dst); err != nil {
			return err
		}
	}
	for _, d := range e.Dirs {
		if err := os.MkdirAll(at(d), 0o755); err != nil {
			return err
		}
	}
	for _, p := range slices.Sorted(maps.Keys(e.Chmod)) {
		if err := os.Chmod(at(p), e.Chmod[p]); err != nil {
			return err
		}
	}
	for _, c := range e.Chroot {
		if err := Chroot(ctx, tree, log, c...); err != nil {
			return err
		}
	}
	for _, p := range slices.Sorted(maps.Keys(e.Write)) {
		if err := writeFile(at(p), []byte(e.Write[p].Data), e.Write[p].Mode); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(dst string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	_ = os.Remove(dst)
	if err := os.WriteFile(dst, data, mode); err != nil {
		return err
	}
	return os.Chmod(dst, mode) // WriteFile's mode is filtered by the umask
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
