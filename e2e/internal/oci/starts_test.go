package oci

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// tinyELF builds a complete x86-64 executable that calls exit(0). With interp
// set it also has a PT_INTERP naming that dynamic loader.
func tinyELF(interp string) []byte {
	code := []byte{0xb8, 60, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05} // mov eax,60; xor edi,edi; syscall
	const base = 0x400000
	nprog := 1
	if interp != "" {
		nprog = 2
	}
	codeOff := uint64(64 + 56*nprog)
	interpOff := codeOff + uint64(len(code))
	size := interpOff + uint64(len(interp)+1)
	progs := []elf.Prog64{{
		Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X),
		Vaddr: base, Paddr: base, Filesz: size, Memsz: size, Align: 0x1000,
	}}
	if interp != "" {
		progs = append([]elf.Prog64{{
			Type: uint32(elf.PT_INTERP), Flags: uint32(elf.PF_R), Off: interpOff,
			Vaddr: base + interpOff, Paddr: base + interpOff,
			Filesz: uint64(len(interp) + 1), Memsz: uint64(len(interp) + 1), Align: 1,
		}}, progs...)
	}
	h := elf.Header64{
		Ident:   [elf.EI_NIDENT]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)},
		Type:    uint16(elf.ET_EXEC),
		Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Entry: base + codeOff, Phoff: 64,
		Ehsize: 64, Phentsize: 56, Phnum: uint16(nprog), Shentsize: 64,
	}
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, h)
	binary.Write(&b, binary.LittleEndian, progs)
	b.Write(code)
	if interp != "" {
		b.WriteString(interp + "\x00")
	}
	return b.Bytes()
}

func filesImage(t *testing.T, cfg Config, files []File) v1.Image {
	t.Helper()
	layer, err := FilesLayer(files)
	if err != nil {
		t.Fatal(err)
	}
	img, err := NewImage(cfg, layer)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// checkErr fails t unless err contains every one of want, or is nil when
// want is empty.
func checkErr(t *testing.T, err error, want ...string) {
	t.Helper()
	t.Logf("CheckStarts: %v", err)
	if len(want) == 0 {
		if err != nil {
			t.Errorf("CheckStarts: %v, want success", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("CheckStarts succeeded, want an error containing %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("CheckStarts: %v, want it to contain %q", err, w)
		}
	}
}

func TestCheckStarts(t *testing.T) {
	exe := tinyELF("")
	ep := func(p string) Config { return Config{Entrypoint: []string{p}} }
	for _, tc := range []struct {
		name  string
		cfg   Config
		files []File
		want  []string // substrings of the error; none means it must pass
	}{
		{name: "static binary", cfg: ep("/usr/bin/app"), files: []File{{Path: "/usr/bin/app", Mode: 0o755, Data: exe}}},
		{name: "cmd without entrypoint", cfg: Config{Cmd: []string{"/app", "-v"}}, files: []File{{Path: "/app", Mode: 0o755, Data: exe}}},
		{
			name: "init script but no binary at the entrypoint", cfg: ep("/usr/bin/docker-registry"),
			files: []File{
				{Path: "/etc/init.d/docker-registry", Mode: 0o755, Data: []byte("#!/bin/sh\nexec /usr/bin/docker-registry\n")},
				{Path: "/bin/sh", Mode: 0o755, Data: exe},
			},
			want: []string{"entrypoint /usr/bin/docker-registry: no such file in the image"},
		},
		{name: "not executable", cfg: ep("/usr/local/bin/x"), files: []File{{Path: "/usr/local/bin/x", Mode: 0o644, Data: exe}}, want: []string{"entrypoint /usr/local/bin/x: not executable (mode 0644)"}},
		{name: "directory", cfg: ep("/usr/local/bin/x"), files: []File{{Path: "/usr/local/bin/x", Dir: true}}, want: []string{"entrypoint /usr/local/bin/x: is a directory"}},
		{name: "parent is a file", cfg: ep("/usr/bin/x"), files: []File{{Path: "/usr/bin", Mode: 0o755, Data: exe}}, want: []string{"entrypoint /usr/bin/x: /usr/bin is not a directory"}},
		{
			name: "symlink chain through a symlinked directory", cfg: ep("/usr/local/bin/x"),
			files: []File{
				{Path: "/usr/local/bin/x", Link: "../../bin/y"}, // -> /usr/bin/y
				{Path: "/usr/bin/y", Link: "/bin/z"},
				{Path: "/bin", Link: "usr/bin"},
				{Path: "/usr/bin/z", Mode: 0o755, Data: exe},
			},
		},
		{
			// The kernel takes ".." physically: /bin/.. is /usr, not /.
			name: "dotdot after a symlinked directory", cfg: ep("/bin/../sbin/x"),
			// /usr/bin/true is there so that /usr/bin, the link's target, exists.
			files: []File{{Path: "/bin", Link: "usr/bin"}, {Path: "/usr/sbin/x", Mode: 0o755, Data: exe}, {Path: "/usr/bin/true", Mode: 0o755, Data: exe}},
		},
		{
			name: "dangling symlink", cfg: ep("/usr/local/bin/x"),
			files: []File{{Path: "/usr/local/bin/x", Link: "/opt/gone"}},
			want:  []string{"entrypoint /usr/local/bin/x: /opt/gone: no such file in the image", "symlink /usr/local/bin/x -> /opt/gone"},
		},
		{
			name: "symlink loop", cfg: ep("/a"),
			files: []File{{Path: "/a", Link: "b"}, {Path: "/b", Link: "/a"}},
			want:  []string{"entrypoint /a: more than 40 levels of symlinks"},
		},
		{
			name: "script with its interpreter", cfg: ep("/usr/local/bin/run"),
			files: []File{{Path: "/usr/local/bin/run", Mode: 0o755, Data: []byte("#!/bin/bash -e\necho hi\n")}, {Path: "/bin/bash", Mode: 0o755, Data: []byte("any")}},
		},
		{
			name: "script without its interpreter", cfg: ep("/usr/local/bin/run"),
			files: []File{{Path: "/usr/local/bin/run", Mode: 0o755, Data: []byte("#!/bin/bash -e\necho hi\n")}},
			want:  []string{"entrypoint /usr/local/bin/run: interpreter /bin/bash: no such file in the image"},
		},
		{
			name: "script whose interpreter is not executable", cfg: ep("/run"),
			files: []File{{Path: "/run", Mode: 0o755, Data: []byte("#! /bin/bash\n")}, {Path: "/bin/bash", Mode: 0o644, Data: []byte("any")}},
			want:  []string{"entrypoint /run: interpreter /bin/bash: not executable (mode 0644)"},
		},
		{
			name: "ELF with its interpreter", cfg: ep("/x"),
			files: []File{{Path: "/x", Mode: 0o755, Data: tinyELF("/lib64/ld-linux-x86-64.so.2")}, {Path: "/lib64/ld-linux-x86-64.so.2", Mode: 0o755, Data: exe}},
		},
		{
			name: "ELF without its interpreter", cfg: ep("/x"),
			files: []File{{Path: "/x", Mode: 0o755, Data: tinyELF("/lib64/ld-linux-x86-64.so.2")}},
			want:  []string{"entrypoint /x: interpreter /lib64/ld-linux-x86-64.so.2: no such file in the image"},
		},
		{
			name: "bare name on PATH", cfg: Config{Entrypoint: []string{"pause"}, Env: []string{"PATH=/usr/local/bin:/opt/bin"}},
			files: []File{{Path: "/opt/bin/pause", Mode: 0o755, Data: exe}},
		},
		{
			name: "bare name not on PATH", cfg: Config{Entrypoint: []string{"pause"}, Env: []string{"PATH=/usr/local/bin:/opt/bin"}},
			files: []File{{Path: "/pause", Mode: 0o755, Data: exe}},
			want:  []string{"entrypoint pause: not found in PATH /usr/local/bin:/opt/bin"},
		},
		{
			name: "bare name on PATH but not executable", cfg: Config{Entrypoint: []string{"pause"}, Env: []string{"PATH=/usr/local/bin:/opt/bin"}},
			files: []File{{Path: "/opt/bin/pause", Mode: 0o644, Data: exe}},
			want:  []string{"entrypoint pause: /opt/bin/pause: not executable (mode 0644)"},
		},
		{
			name: "relative path from the working directory", cfg: Config{Entrypoint: []string{"./run"}, WorkingDir: "/app"},
			files: []File{{Path: "/app/run", Mode: 0o755, Data: exe}},
		},
		{name: "no entrypoint or cmd", files: []File{{Path: "/app", Mode: 0o755, Data: exe}}, want: []string{"neither entrypoint nor cmd"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErr(t, CheckStarts(filesImage(t, tc.cfg, tc.files)), tc.want...)
		})
	}
}

// An image without PATH in its environment gets the default one.
func TestCheckStartsDefaultPath(t *testing.T) {
	img := filesImage(t, Config{Entrypoint: []string{"pause"}}, []File{{Path: "/usr/bin/pause", Mode: 0o755, Data: tinyELF("")}})
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.Env = nil
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	checkErr(t, CheckStarts(img))
}

// tarLayer makes a layer of raw tar entries, for what FilesLayer cannot
// express.
func tarLayer(t *testing.T, entries ...tar.Header) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		data := []byte(h.Linkname)
		if h.Typeflag == tar.TypeReg {
			h.Size, h.Linkname = int64(len(data)), ""
		} else {
			data = nil
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	return layer
}

// A hard link in an upper layer to a file in a lower one is that file: its
// mode and its content count, here a script whose interpreter is missing.
// A whiteout removes a file from lower layers.
func TestCheckStartsHardLinkAndWhiteout(t *testing.T) {
	// For TypeReg entries tarLayer takes Linkname as the content.
	lower := tarLayer(t,
		tar.Header{Typeflag: tar.TypeReg, Name: "usr/bin/a", Mode: 0o755, Linkname: "#!/bin/missing\n"},
		tar.Header{Typeflag: tar.TypeReg, Name: "usr/bin/gone", Mode: 0o755, Linkname: "#!/usr/bin/a\n"},
	)
	upper := tarLayer(t,
		tar.Header{Typeflag: tar.TypeLink, Name: "usr/bin/b", Mode: 0o644, Linkname: "usr/bin/a"},
		tar.Header{Typeflag: tar.TypeReg, Name: "usr/bin/.wh.gone", Mode: 0o644},
	)
	for _, tc := range []struct {
		ep   string
		want []string
	}{
		{"/usr/bin/b", []string{"entrypoint /usr/bin/b: interpreter /bin/missing: no such file in the image"}},
		{"/usr/bin/gone", []string{"entrypoint /usr/bin/gone: no such file in the image"}},
	} {
		t.Run(tc.ep, func(t *testing.T) {
			img, err := NewImage(Config{Entrypoint: []string{tc.ep}}, lower, upper)
			if err != nil {
				t.Fatal(err)
			}
			checkErr(t, CheckStarts(img), tc.want...)
		})
	}
}

// hostELF reads the interpreter and needed libraries of the host's ELF file
// exe, and finds them on the host. It skips t if exe is not dynamic.
func hostELF(t *testing.T, exe string) (interp string, libs map[string]string) {
	t.Helper()
	f, err := elf.Open(exe)
	if err != nil {
		t.Skipf("%s is not an ELF file here: %v", exe, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err != nil {
				t.Fatal(err)
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	if interp == "" || len(needed) == 0 {
		t.Skipf("%s is not a dynamically linked ELF file here", exe)
	}
	libs = map[string]string{}
	for _, lib := range needed {
		for _, d := range strings.Split(loaderDirs, ":") {
			if _, err := os.Stat(filepath.Join(d, lib)); err == nil {
				libs[lib] = filepath.Join(d, lib)
				break
			}
		}
		if libs[lib] == "" {
			t.Skipf("%s needs %s, which is in none of %s here", exe, lib, loaderDirs)
		}
	}
	return interp, libs
}

// hostFile copies the host file p (through symlinks) to image path at.
func hostFile(t *testing.T, at, p string) File {
	t.Helper()
	src, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	return File{Path: at, Src: src, Mode: int64(fi.Mode().Perm())}
}

// A real dynamically linked program, the host's /bin/sh, with and without
// the loader and libraries it needs, placed where the loader looks.
func TestCheckStartsDynamicELF(t *testing.T) {
	interp, libs := hostELF(t, "/bin/sh")
	var someLib string
	for lib := range libs {
		someLib = lib
		break
	}
	sh := hostFile(t, "/bin/sh", "/bin/sh")
	ld := hostFile(t, interp, interp)
	libsIn := func(dir func(lib, host string) string, except string) []File {
		var out []File
		for lib, host := range libs {
			if lib != except {
				out = append(out, hostFile(t, dir(lib, host), host))
			}
		}
		return out
	}
	hostDir := func(lib, host string) string { return host }
	optLib := func(lib, _ string) string { return path.Join("/opt/lib", lib) }
	for _, tc := range []struct {
		name  string
		env   []string
		files []File
		want  []string
	}{
		{name: "complete", files: append([]File{sh, ld}, libsIn(hostDir, "")...)},
		{
			name: "no interpreter", files: append([]File{sh}, libsIn(hostDir, "")...),
			want: []string{"entrypoint /bin/sh: interpreter " + interp + ": no such file in the image"},
		},
		{
			name: "missing library", files: append([]File{sh, ld}, libsIn(hostDir, someLib)...),
			want: []string{"entrypoint /bin/sh needs " + someLib + ", found in none of /lib/x86_64-linux-gnu, "},
		},
		{
			name: "libraries outside the search path", files: append([]File{sh, ld}, libsIn(optLib, "")...),
			want: []string{"entrypoint /bin/sh needs "},
		},
		{name: "libraries on LD_LIBRARY_PATH", env: []string{"LD_LIBRARY_PATH=/opt/lib"}, files: append([]File{sh, ld}, libsIn(optLib, "")...)},
		{
			name: "libraries in an ld.so.conf directory",
			files: append([]File{
				sh, ld,
				{Path: "/etc/ld.so.conf", Data: []byte("include /etc/ld.so.conf.d/*.conf\n")},
				{Path: "/etc/ld.so.conf.d/opt.conf", Data: []byte("# local libraries\n/opt/lib\n")},
			}, libsIn(optLib, "")...),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := filesImage(t, Config{Entrypoint: []string{"/bin/sh"}, Env: tc.env}, tc.files)
			checkErr(t, CheckStarts(img), tc.want...)
		})
	}
}

// The test binary itself, static or dynamic, starts in an image holding it
// and whatever it needs from this host.
func TestCheckStartsTestBinary(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Skipf("cannot find the test binary: %v", err)
	}
	f, err := elf.Open(self)
	if err != nil {
		t.Skipf("the test binary is not ELF: %v", err)
	}
	dynamic := hasInterp(f)
	f.Close()
	files := []File{hostFile(t, "/test", self)}
	if dynamic {
		interp, libs := hostELF(t, self)
		files = append(files, hostFile(t, interp, interp))
		for _, host := range libs {
			files = append(files, hostFile(t, host, host))
		}
	}
	checkErr(t, CheckStarts(filesImage(t, Config{Entrypoint: []string{"/test"}}, files)))
}

func hasInterp(f *elf.File) bool {
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}
