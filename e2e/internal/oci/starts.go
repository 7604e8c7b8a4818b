package oci

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// maxHops is how many symlinks one lookup may follow, as in Linux
// (MAXSYMLINKS), so a loop ends with an error rather than hanging.
const maxHops = 40

// loaderDirs are the directories the dynamic loader searches after the
// binary's own run paths and the ld.so cache.
const loaderDirs = "/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib64:/usr/lib64:/lib:/usr/lib"

// CheckStarts reports whether img can start: its entrypoint
// (Config.Entrypoint[0], else Cmd[0]; a name without '/' is looked up in the
// image's PATH) exists in the image as a regular file with an exec bit, after
// following symlinks in every path component. If it is an ELF file, its
// PT_INTERP interpreter must exist and be executable, and every DT_NEEDED
// library must be found in its run path, the image's LD_LIBRARY_PATH, the
// directories of /etc/ld.so.conf or the loader's default directories. If it
// starts with "#!", the interpreter named there must exist and be executable.
//
// It catches images that would fail at exec time with "no such file or
// directory", which a container runtime reports only once the pod is
// crash-looping. Errors name the entrypoint and the file at fault; the caller
// adds the image's name.
func CheckStarts(img v1.Image) error {
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	argv := cf.Config.Entrypoint
	if len(argv) == 0 {
		argv = cf.Config.Cmd
	}
	if len(argv) == 0 || argv[0] == "" {
		return errors.New("image has neither entrypoint nor cmd")
	}
	ep := argv[0]
	env := map[string]string{"PATH": strings.TrimPrefix(DefaultPath, "PATH=")}
	for _, kv := range cf.Config.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	wd := path.Join("/", cf.Config.WorkingDir)

	t, conf, err := readTree(img)
	if err != nil {
		return fmt.Errorf("read image files: %w", err)
	}

	// Find the entrypoint as execve/execvp would: a name with '/' is a path
	// (relative to the working directory), a bare name is searched on PATH.
	label, exe := "entrypoint "+ep, ""
	if strings.Contains(ep, "/") {
		if exe, err = t.file(abs(wd, ep), true); err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
	} else {
		var firstErr error
		for _, dir := range strings.Split(env["PATH"], ":") {
			cand := abs(wd, path.Join(dir, ep))
			resolved, err := t.file(cand, true)
			if err == nil {
				label, exe = fmt.Sprintf("entrypoint %s (%s)", ep, cand), resolved
				break
			}
			// Like execvp, keep looking, but report a file found and unusable
			// rather than "not found".
			if !errors.Is(err, errNotExist{}) && firstErr == nil {
				firstErr = fmt.Errorf("%s: %s: %w", label, cand, err)
			}
		}
		if exe == "" {
			if firstErr != nil {
				return firstErr
			}
			return fmt.Errorf("%s: not found in PATH %s", label, env["PATH"])
		}
	}

	data, err := readContent(img, t.content(exe))
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	switch {
	case bytes.HasPrefix(data, []byte("#!")):
		line, _, _ := bytes.Cut(data[2:], []byte("\n"))
		fields := strings.Fields(string(line))
		if len(fields) == 0 {
			return fmt.Errorf("%s: #! line names no interpreter", label)
		}
		// The kernel opens a relative interpreter from the working directory.
		if _, err := t.file(abs(wd, fields[0]), true); err != nil {
			return fmt.Errorf("%s: interpreter %s: %w", label, fields[0], err)
		}
	case bytes.HasPrefix(data, []byte(elf.ELFMAG)):
		return t.checkELF(label, exe, data, env["LD_LIBRARY_PATH"], conf)
	}
	return nil
}

// checkELF checks the interpreter and direct libraries of the ELF file data,
// found at exe in the image.
func (t tree) checkELF(label, exe string, data []byte, ldPath string, conf map[string][]byte) error {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%s: not a valid ELF file: %w", label, err)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(p.Open())
		if err != nil {
			return fmt.Errorf("%s: read PT_INTERP: %w", label, err)
		}
		interp := string(bytes.TrimRight(b, "\x00"))
		if _, err := t.file(interp, true); err != nil {
			return fmt.Errorf("%s: interpreter %s: %w", label, interp, err)
		}
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("%s: read DT_NEEDED: %w", label, err)
	}
	if len(needed) == 0 {
		return nil
	}
	// The loader ignores DT_RPATH when DT_RUNPATH is present.
	runpath, _ := f.DynString(elf.DT_RUNPATH)
	if len(runpath) == 0 {
		runpath, _ = f.DynString(elf.DT_RPATH)
	}
	var dirs []string
	seen := map[string]bool{}
	add := func(list string) {
		for _, d := range strings.Split(list, ":") {
			d = strings.NewReplacer("${ORIGIN}", path.Dir(exe), "$ORIGIN", path.Dir(exe)).Replace(d)
			if d = path.Clean(d); path.IsAbs(d) && !seen[d] {
				seen[d] = true
				dirs = append(dirs, d)
			}
		}
	}
	for _, rp := range runpath {
		add(rp)
	}
	add(ldPath)
	add(strings.Join(confDirs(conf, "/etc/ld.so.conf", map[string]bool{}), ":"))
	add(loaderDirs)
	for _, lib := range needed {
		if strings.Contains(lib, "/") { // a path, not a name to search for
			if _, err := t.file(path.Join("/", lib), false); err != nil {
				return fmt.Errorf("%s: library %s: %w", label, lib, err)
			}
			continue
		}
		found := false
		for _, d := range dirs {
			if _, err := t.file(path.Join(d, lib), false); err == nil {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("%s needs %s, found in none of %s", label, lib, strings.Join(dirs, ", "))
		}
	}
	return nil
}

// confDirs lists the library directories named by the ld.so.conf file at p
// and the files it includes, which ldconfig puts in the loader's cache.
func confDirs(conf map[string][]byte, p string, visited map[string]bool) []string {
	if visited[p] {
		return nil
	}
	visited[p] = true
	var dirs []string
	for _, line := range strings.Split(string(conf[p]), "\n") {
		line, _, _ = strings.Cut(line, "#")
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0 || fields[0] == "hwcap":
		case fields[0] == "include":
			for _, pat := range fields[1:] {
				if !path.IsAbs(pat) {
					pat = path.Join(path.Dir(p), pat)
				}
				var matches []string
				for name := range conf {
					if ok, _ := path.Match(pat, name); ok {
						matches = append(matches, name)
					}
				}
				sort.Strings(matches)
				for _, m := range matches {
					dirs = append(dirs, confDirs(conf, m, visited)...)
				}
			}
		default:
			for _, d := range fields {
				d, _, _ = strings.Cut(d, "=") // ldconfig's old "dir=libtype" form
				dirs = append(dirs, d)
			}
		}
	}
	return dirs
}

// entry is what CheckStarts keeps of one file of the image: enough to follow
// links and check modes, not its content.
type entry struct {
	typ  byte   // tar type flag; hard links become tar.TypeReg
	mode int64  // permission bits
	link string // symlink target as written, or hard-link target path
	data string // for a hard link, the path whose tar entry holds the content
}

// tree indexes an image's flattened filesystem by cleaned absolute path.
type tree map[string]entry

// readTree indexes the headers of the image's final filesystem (pass 1),
// keeping the content only of the small ld.so.conf files.
func readTree(img v1.Image) (tree, map[string][]byte, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	t := tree{"/": {typ: tar.TypeDir, mode: 0o755}}
	conf := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		p := path.Join("/", h.Name)
		e := entry{typ: h.Typeflag, mode: h.Mode & 0o7777, link: h.Linkname}
		if h.Typeflag == tar.TypeLink {
			e.link = path.Join("/", h.Linkname)
		}
		t[p] = e
		// Layers need not list every parent directory.
		for d := path.Dir(p); ; d = path.Dir(d) {
			if _, ok := t[d]; ok {
				break
			}
			t[d] = entry{typ: tar.TypeDir, mode: 0o755}
		}
		if (p == "/etc/ld.so.conf" || strings.HasPrefix(p, "/etc/ld.so.conf.d/")) && h.Typeflag == tar.TypeReg && h.Size <= 1<<16 {
			if conf[p], err = io.ReadAll(tr); err != nil {
				return nil, nil, err
			}
		}
	}
	// A hard link is the file it links to; that file may come later in the
	// stream (upper layers are extracted first), so resolve them at the end.
	for p, e := range t {
		if target, ok := t[e.link]; e.typ == tar.TypeLink && ok && target.typ == tar.TypeReg {
			t[p] = entry{typ: tar.TypeReg, mode: target.mode, data: e.link}
		}
	}
	return t, conf, nil
}

// errNotExist marks an error for a path that is not in the image.
type errNotExist struct{ msg string }

func (e errNotExist) Error() string        { return e.msg }
func (e errNotExist) Is(target error) bool { _, ok := target.(errNotExist); return ok }

// file resolves p and checks it is a regular file, with an exec bit if exec
// is set. It returns the resolved path. Errors do not repeat p, but name the
// resolved path and the last symlink followed when they differ from p.
func (t tree) file(p string, exec bool) (string, error) {
	resolved, via, err := t.resolve(p)
	if err != nil {
		return "", err
	}
	at := ""
	if resolved != p {
		at = resolved + ": "
	}
	e, ok := t[resolved]
	switch {
	case !ok && via == "":
		return "", errNotExist{"no such file in the image"}
	case !ok:
		return "", errNotExist{fmt.Sprintf("%sno such file in the image (through symlink %s)", at, via)}
	case e.typ == tar.TypeDir:
		return "", fmt.Errorf("%sis a directory", at)
	case e.typ == tar.TypeLink:
		return "", fmt.Errorf("%shard link to %s, which is not a regular file in the image", at, e.link)
	case e.typ != tar.TypeReg:
		return "", fmt.Errorf("%snot a regular file (tar type %q)", at, e.typ)
	case exec && e.mode&0o111 == 0:
		return "", fmt.Errorf("%snot executable (mode %04o)", at, e.mode)
	}
	return resolved, nil
}

// resolve follows symlinks in every component of p, as the kernel does:
// relative targets start from the link's directory, and ".." after a
// symlinked directory goes to the parent of its target. It returns the path
// reached (which may not exist) and the last symlink followed.
func (t tree) resolve(p string) (resolved, via string, err error) {
	todo := strings.Split(p, "/")
	cur := "/"
	for hops := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, c)
		e, ok := t[next]
		switch {
		case !ok:
			return path.Join(append([]string{next}, todo...)...), via, nil
		case e.typ == tar.TypeSymlink:
			if hops++; hops > maxHops {
				return "", "", fmt.Errorf("more than %d levels of symlinks (a loop through %s -> %s?)", maxHops, next, e.link)
			}
			via = next + " -> " + e.link
			if path.IsAbs(e.link) {
				cur = "/"
			}
			todo = append(strings.Split(e.link, "/"), todo...)
		case len(todo) > 0 && e.typ != tar.TypeDir:
			return "", "", fmt.Errorf("%s is not a directory", next)
		default:
			cur = next
		}
	}
	return cur, via, nil
}

// abs makes p absolute: relative paths start from the working directory wd.
// It does not clean p, since ".." after a symlink is resolved by resolve.
func abs(wd, p string) string {
	if path.IsAbs(p) {
		return p
	}
	return strings.TrimSuffix(wd, "/") + "/" + p
}

// content is the path whose tar entry holds the bytes of the file at p.
func (t tree) content(p string) string {
	if d := t[p].data; d != "" {
		return d
	}
	return p
}

// readContent reads the file at p from the image's final filesystem (pass
// 2). It reads only the first line unless the file is ELF, whose headers and
// dynamic section can lie anywhere in it.
func readContent(img v1.Image, p string) ([]byte, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("%s: content not found in the image", p)
		}
		if err != nil {
			return nil, err
		}
		if path.Join("/", h.Name) != p {
			continue
		}
		// 256 bytes is as much of a "#!" line as the kernel reads.
		head := make([]byte, min(h.Size, 256))
		if _, err := io.ReadFull(tr, head); err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		if !bytes.HasPrefix(head, []byte(elf.ELFMAG)) {
			return head, nil
		}
		rest, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		return append(head, rest...), nil
	}
}
