package page

import (
	"bytes"
	"context"
	"errors"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// needChromium skips the test without Debian's chromium, or fails it when
// MESHCONFORM_REQUIRE_CHROMIUM=1 (CI): there a skipped browser test would
// pass a page nobody saw rendered.
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(Chromium); err != nil {
		if os.Getenv("MESHCONFORM_REQUIRE_CHROMIUM") == "1" {
			t.Fatalf("%v (%v)", ErrNoChromium, err)
		}
		t.Skipf("no %s (%v); %v", Chromium, err, ErrNoChromium)
	}
}

// profiles is where each render makes its work directory (profile and
// chromium's TMPDIR).
var profiles = filepath.Join(os.TempDir(), "meshconform-chromium-")

// checkCleanup checks, at the test's end, that every render's work
// directory was removed and no process of chromium's is left.
func checkCleanup(t *testing.T) {
	before, _ := filepath.Glob(profiles + "*")
	t.Cleanup(func() {
		if left := leftovers(profiles, 10*time.Second); len(left) > 0 {
			t.Errorf("chromium processes left after the test: %q", left)
		}
		after, _ := filepath.Glob(profiles + "*")
		for _, d := range after {
			if !slices.Contains(before, d) {
				t.Errorf("chromium work directory left: %s", d)
			}
		}
	})
}

// leftovers waits up to wait for the processes whose command line names
// dir (chromium and its helpers all carry --user-data-dir) to end, and
// returns those still running. Zombies, with no command line, are ended.
func leftovers(dir string, wait time.Duration) []string {
	deadline := time.Now().Add(wait)
	for {
		left := running(dir)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// running lists the processes whose command line contains s.
func running(s string) []string {
	var out []string
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range cmdlines {
		if raw, err := os.ReadFile(p); err == nil && bytes.Contains(raw, []byte(s)) {
			out = append(out, filepath.Base(filepath.Dir(p))+": "+string(bytes.ReplaceAll(raw, []byte{0}, []byte{' '})))
		}
	}
	return out
}

// TestBrowserShowsThePage opens the sample run's page in headless Chromium
// and checks what it shows: the DOM after rendering, then a screenshot.
func TestBrowserShowsThePage(t *testing.T) {
	needChromium(t)
	checkCleanup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)

	dir := copySample(t)
	in, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	specs := len(in.Suites[0].SpecReports)
	path, err := WriteFile(dir, in)
	if err != nil {
		t.Fatal(err)
	}

	dom, err := dumpDOM(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?s)<header id="verdict" class="verdict pass">\s*<h1>passed</h1>`).FindString(dom); m == "" {
		t.Errorf("rendered page shows no passed verdict:\n%.2000s", dom)
	}
	if n := len(regexp.MustCompile(`<tr class="spec [a-z]+" data-state="[a-z]+">`).FindAllString(dom, -1)); n != specs {
		t.Errorf("rendered page shows %d spec rows, want %d", n, specs)
	}
	// The SVG is parsed into the DOM as SVG: its bars are there.
	tl := regexp.MustCompile(`(?s)<figure id="timeline"><svg [^>]*>(.*?)</svg>`).FindStringSubmatch(dom)
	if tl == nil || strings.Count(tl[1], "<rect ") != len(in.Phases) {
		t.Errorf("rendered time line: want an SVG with %d bars", len(in.Phases))
	}

	shot := filepath.Join(dir, "report.png")
	if err := Screenshot(ctx, path, shot); err != nil {
		t.Fatal(err)
	}
	checkScreenshot(t, shot)
}

// checkScreenshot: a PNG of the window's size that is not blank — a page
// chromium failed to render is one colour.
func checkScreenshot(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 1000 || b.Dy() < 1000 {
		t.Errorf("screenshot is %v, want about 1400×2000", b.Size())
	}
	colours := map[[4]uint32]bool{}
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y += 7 {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x += 7 {
			r, g, b, a := img.At(x, y).RGBA()
			colours[[4]uint32{r, g, b, a}] = true
		}
	}
	if len(colours) < 10 {
		t.Errorf("screenshot has %d colours: blank", len(colours))
	}
	// The verdict banner, at the top, is green.
	if c := img.At(200, 50); !green(c) {
		t.Errorf("verdict banner not green at (200,50): %v", c)
	}
}

func green(c color.Color) bool {
	r, g, b, _ := c.RGBA()
	return g > r+0x2000 && g > b+0x2000
}

// TestScreenshotCancelled: a render cancelled once chromium has forked its
// helpers ends with an error, and every process of it is gone.
func TestScreenshotCancelled(t *testing.T) {
	needChromium(t)
	checkCleanup(t)
	dir := copySample(t)
	in, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	path, err := WriteFile(dir, in)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		// The browser and two of its helpers: the group is worth killing.
		for ctx.Err() == nil && len(running(profiles)) < 3 {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
	}()
	start := time.Now()
	err = Screenshot(ctx, path, filepath.Join(dir, "report.png"))
	if err == nil {
		t.Fatal("no error from a cancelled render")
	}
	if !errors.Is(ctx.Err(), context.Canceled) || time.Since(start) > 30*time.Second {
		t.Errorf("render ended after %v: %v", time.Since(start), err)
	}
}
