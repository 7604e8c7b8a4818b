package page

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Chromium is Debian's chromium package's browser, which renders the page
// headless; scripts/setup-chromium.sh installs it.
const Chromium = "/usr/bin/chromium"

// ErrNoChromium is returned when Chromium is not installed.
var ErrNoChromium = errors.New("install Debian's chromium: scripts/setup-chromium.sh")

// chromiumTimeout bounds one render: a headless browser that hangs (no
// display, a stuck GPU process) must not hang the run it reports on.
const chromiumTimeout = 2 * time.Minute

// headless are the flags of every render: no sandbox (the harness runs as
// root, where chromium refuses its sandbox), and nothing that reaches the
// network on its own (updates, sync, QUIC probes), since the page must be
// shown exactly as it is offline.
var headless = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
	"--no-first-run", "--disable-background-networking",
	"--disable-component-update", "--disable-sync", "--hide-scrollbars",
}

// Screenshot renders the page at htmlPath in headless Chromium, 1400×2000
// CSS pixels, and writes the PNG to pngPath — the report.png kept beside
// report.html, for a glance without a browser.
func Screenshot(ctx context.Context, htmlPath, pngPath string) error {
	abs, err := filepath.Abs(pngPath)
	if err != nil {
		return fmt.Errorf("screenshot path: %w", err)
	}
	// Removed first, so the check below sees this render's file, not an old one.
	_ = os.Remove(abs)
	if _, err := runChromium(ctx, htmlPath, "--screenshot="+abs, "--window-size=1400,2000"); err != nil {
		return err
	}
	f, err := os.Open(abs)
	if err != nil {
		return fmt.Errorf("screenshot of %s: %w", htmlPath, err)
	}
	defer f.Close()
	if _, err := png.DecodeConfig(f); err != nil {
		return fmt.Errorf("screenshot of %s is no PNG: %w", htmlPath, err)
	}
	return nil
}

// dumpDOM returns the page's DOM as Chromium holds it once rendered: what
// is shown, not what was written.
func dumpDOM(ctx context.Context, htmlPath string) (string, error) {
	out, err := runChromium(ctx, htmlPath, "--dump-dom")
	return string(out), err
}

// runChromium runs one headless render of htmlPath with its own throwaway
// profile and temporary directory, in its own process group so that it and
// every helper process it forks are killed when it ends, times out or ctx
// is done.
func runChromium(ctx context.Context, htmlPath string, args ...string) ([]byte, error) {
	if _, err := os.Stat(Chromium); err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNoChromium, err)
	}
	abs, err := filepath.Abs(htmlPath)
	if err != nil {
		return nil, fmt.Errorf("page path: %w", err)
	}
	// One directory for the render's profile and chromium's own temporary
	// files (its TMPDIR), which a killed chromium leaves behind. Its path
	// is kept short: chromium puts a socket under TMPDIR and aborts when
	// that path passes the 108 bytes a socket's path may have.
	work, err := os.MkdirTemp("", "meshconform-chromium-")
	if err != nil {
		return nil, fmt.Errorf("chromium profile: %w", err)
	}
	defer os.RemoveAll(work)
	profile, tmp := filepath.Join(work, "profile"), filepath.Join(work, "t")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("chromium temporary directory: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, chromiumTimeout)
	defer cancel()

	argv := append(append(append([]string(nil), headless...), "--user-data-dir="+profile), args...)
	argv = append(argv, (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String())
	cmd := exec.CommandContext(ctx, Chromium, argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	inGroup(cmd)
	cmd.WaitDelay = 5 * time.Second // pipes held open by a stray helper
	err = cmd.Run()
	killGroup(cmd) // helpers still exiting after the browser
	if err != nil {
		return nil, fmt.Errorf("chromium %s on %s: %w; stderr: %s", args[0], htmlPath, err, tail(stderr.Bytes(), 2000))
	}
	return stdout.Bytes(), nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
