package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/meshconform/meshconform/e2e/harness"
	"github.com/meshconform/meshconform/e2e/images"
	"github.com/meshconform/meshconform/e2e/report"
)

// coldMinFree is the free space a cold bench wants where it puts its
// caches: the module cache, Go's build cache and meshconform's image cache
// (registry storage, Kubernetes and Istio builds) fill about 15 GB.
const coldMinFree = 15 << 30

// bencher runs make the way a person does and measures it.
type bencher struct {
	dir string // artifacts/bench/<stamp>: one directory per run below it
	out io.Writer
	env []string // the environment make gets (and the cold caches' overrides)
	// make runs `make args...` in the repository's root with env.
	make func(ctx context.Context, env []string, args ...string) error
	// leftovers lists meshconform's Docker objects; a kept registry would
	// serve a cold run the images of the user's cache.
	leftovers func(ctx context.Context) ([]string, error)
	// removeImages removes the images meshconform loaded into Docker (the
	// kind node image, the registry's): they are keyed by their inputs, so a
	// cold run would otherwise find them and not build them.
	removeImages func(ctx context.Context) error
	cacheBase    string // where the cold caches go; see coldCacheBase
	minFree      uint64
}

func newBencher(cfg harness.Config, dir string) *bencher {
	return &bencher{
		dir: dir, out: os.Stdout, env: os.Environ(),
		make: func(ctx context.Context, env []string, args ...string) error {
			return runMake(ctx, cfg.RepoRoot, env, args...)
		},
		leftovers:    func(ctx context.Context) ([]string, error) { return leftovers(ctx, cfg) },
		removeImages: removeOwnImages,
		cacheBase:    coldCacheBase(), minFree: coldMinFree,
	}
}

// warm runs `make e2e` once with the caches as they are.
func (b *bencher) warm(ctx context.Context, rec *Record) error {
	run, err := b.run(ctx, "warm", b.env, "e2e")
	rec.Runs = append(rec.Runs, run)
	return err
}

// cold measures a fresh machine's first run: GOMODCACHE, GOCACHE and
// MESHCONFORM_CACHE point at new, empty directories; `make test` then
// `make e2e` (the README's two commands) run in them; then `make e2e`
// again with the caches they filled, for the warm figure beside it. The
// caches are removed at the end, after a failure or an interrupt too.
//
// Docker's own image store is not emptied, which would delete the user's
// images; only meshconform's own images there (the kind node image and the
// registry's, labelled as ours) are removed first, so they are built again.
// Docker itself stays installed and running: "cold" is cold for Go's and
// meshconform's caches, not for the Docker engine.
func (b *bencher) cold(ctx context.Context, rec *Record) (err error) {
	// A SIGTERM, like an interrupt, must still reach the cleanup below.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
	defer stop()
	if left, lerr := b.leftovers(ctx); lerr != nil {
		fmt.Fprintf(b.out, "bench: cannot list leftovers before the cold run (%v); make e2e's setup will start Docker\n", lerr)
	} else if len(left) > 0 {
		return fmt.Errorf("cold bench: meshconform objects exist (%s): run `make clean` first, or a kept registry would serve the cold run from the usual cache", strings.Join(left, ", "))
	}
	if b.removeImages != nil {
		if err := b.removeImages(ctx); err != nil {
			return fmt.Errorf("cold bench: remove meshconform's Docker images: %w", err)
		}
	}
	if free, ok := diskFree(b.cacheBase); ok && free < b.minFree {
		return fmt.Errorf("cold bench: %s has %s free, the cold caches need about %s: free space there or set XDG_CACHE_HOME to a bigger disk",
			b.cacheBase, humanBytes(int64(free)), humanBytes(int64(b.minFree)))
	}
	if err := os.MkdirAll(b.cacheBase, 0o755); err != nil {
		return fmt.Errorf("cold bench: cache directory: %w", err)
	}
	tmp, err := os.MkdirTemp(b.cacheBase, "meshconform-bench-cold-")
	if err != nil {
		return fmt.Errorf("cold bench: cache directory: %w", err)
	}
	caches := map[string]string{
		"GOMODCACHE":        filepath.Join(tmp, "gomod"),
		"GOCACHE":           filepath.Join(tmp, "gobuild"),
		"MESHCONFORM_CACHE": filepath.Join(tmp, "meshconform"),
	}
	rec.ColdCaches = &ColdCaches{Dir: tmp, Bytes: map[string]int64{}}
	defer func() {
		for k, dir := range caches {
			rec.ColdCaches.Bytes[k] = images.CacheSize(dir)
		}
		// After a failed teardown a registry may still serve from the
		// caches removed below; the next run would reuse it.
		if left, lerr := b.leftovers(context.WithoutCancel(ctx)); lerr == nil && len(left) > 0 {
			fmt.Fprintf(b.out, "bench: the cold runs left %s: run `make clean`\n", strings.Join(left, ", "))
		}
		fmt.Fprintf(b.out, "bench: removing the cold caches in %s\n", tmp)
		if rerr := removeTree(tmp); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	// exec keeps the last of duplicate variables: these override the user's.
	env := append([]string(nil), b.env...)
	for k, dir := range caches {
		env = append(env, k+"="+dir)
	}
	// A kept registry would outlive the caches it serves from.
	env = append(env, "MESHCONFORM_KEEP_CLUSTERS=")
	run, err := b.run(ctx, "cold", env, "test", "e2e")
	rec.Runs = append(rec.Runs, run)
	if err != nil {
		return err
	}
	run, err = b.run(ctx, "warm", env, "e2e")
	rec.Runs = append(rec.Runs, run)
	return err
}

// run runs the make targets one after the other (stopping at the first
// failure) with the run's artifacts in <dir>/<name>, timing each and
// sampling the machine's CPU over it, then reads the run's phases.json.
func (b *bencher) run(ctx context.Context, name string, env []string, targets ...string) (*RunRecord, error) {
	r := &RunRecord{Name: name, Artifacts: filepath.Join(b.dir, name)}
	var runErr error
	var e2eCPU *report.CPU
	var cpus []report.CPUSummary
	for _, target := range targets {
		if err := ctx.Err(); err != nil {
			runErr = fmt.Errorf("bench %s: make %s not started: %w", name, target, err)
			break
		}
		c := Command{Command: "make " + target}
		fmt.Fprintf(b.out, "== bench %s: make %s (artifacts %s)\n", name, target, r.Artifacts)
		sampler, serr := report.StartCPUSampler(report.DefaultCPUInterval)
		if serr != nil {
			fmt.Fprintf(b.out, "bench: no CPU record: %v\n", serr)
		}
		start := time.Now()
		// The Makefile passes ARTIFACTS on as MESHCONFORM_ARTIFACTS; on the
		// command line it overrides a value inherited through MAKEFLAGS.
		err := b.make(ctx, env, target, "ARTIFACTS="+r.Artifacts)
		c.WallSeconds = round1(time.Since(start).Seconds())
		if sampler != nil {
			cpu := sampler.Stop()
			c.CPU = &cpu.Summary
			cpus = append(cpus, cpu.Summary)
			if target == "e2e" {
				e2eCPU = cpu
			}
		}
		c.OK = err == nil
		r.WallSeconds = round1(r.WallSeconds + c.WallSeconds)
		r.Commands = append(r.Commands, c)
		if err != nil {
			r.Commands[len(r.Commands)-1].Error = err.Error()
			runErr = fmt.Errorf("bench %s: %w", name, err)
			break
		}
	}
	r.CPU = sumCPU(cpus)
	doc, err := readPhases(r.Artifacts)
	if err != nil {
		r.Error = err.Error()
		if runErr == nil {
			runErr = fmt.Errorf("bench %s: %w", name, err)
		}
		return r, runErr
	}
	r.fromPhases(doc)
	// The run's own Gantt chart with the CPU strip of the whole make e2e,
	// beside the run's directory (make e2e empties that directory first).
	if e2eCPU != nil {
		if err := writeGantt(filepath.Join(b.dir, name+".svg"), doc.Phases, e2eCPU); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	return r, runErr
}

func writeGantt(path string, phases []report.Phase, cpu *report.CPU) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("gantt chart: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("gantt chart: %w", err)
	}
	if err := report.WriteGanttCPU(f, phases, cpu); err != nil {
		f.Close()
		return fmt.Errorf("gantt chart %s: %w", path, err)
	}
	return f.Close()
}

// sumCPU adds up the commands' CPU use; the average is weighted by wall
// time. nil when no command was sampled.
func sumCPU(parts []report.CPUSummary) *report.CPUSummary {
	if len(parts) == 0 {
		return nil
	}
	s := report.CPUSummary{Start: parts[0].Start, Cores: parts[0].Cores}
	var weighted float64
	for _, p := range parts {
		s.WallSeconds += p.WallSeconds
		s.BusySeconds += p.BusySeconds
		s.UserSeconds += p.UserSeconds
		s.SystemSeconds += p.SystemSeconds
		s.IOWaitSeconds += p.IOWaitSeconds
		weighted += p.BusyAvg * p.WallSeconds
	}
	if s.WallSeconds > 0 {
		s.BusyAvg = weighted / s.WallSeconds
	}
	return &s
}

// runMake runs make in dir with env, its output on ours. It stays in our
// process group so that a Ctrl-C reaches the suite directly and its
// teardown runs; on any other cancel (SIGTERM) make gets an interrupt, and
// a few minutes to pass it on before it is killed.
func runMake(ctx context.Context, dir string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, "make", args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 3 * time.Minute
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("make %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// leftovers lists meshconform's clusters, containers and networks, as
// `meshconform leftovers` does, writing the harness's report to a
// directory it removes.
func leftovers(ctx context.Context, cfg harness.Config) ([]string, error) {
	tmp, err := os.MkdirTemp("", "meshconform-bench-preflight-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	cfg.ArtifactsDir = tmp
	h, err := openHarness(cfg, io.Discard)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	names, err := h.ClusterNames()
	if err != nil {
		return nil, err
	}
	return h.Leftovers(ctx, names...)
}

// coldCacheBase is where a cold bench makes its caches: the user's cache
// directory (~/.cache), where Go's and meshconform's caches live too, so
// the cold and warm runs write to the same disk and compare; /tmp is often
// a RAM-backed tmpfs, too small for ~15 GB. Without a home directory,
// $TMPDIR.
func coldCacheBase() string {
	if d, err := os.UserCacheDir(); err == nil {
		return d
	}
	return os.TempDir()
}

// removeTree removes a cold bench's cache directory. Go makes the module
// cache read-only, so directories are made writable first; the registry
// container wrote its storage as root, so a user who is not root tries
// `sudo -n rm` (no password prompt) before giving up with the path.
func removeTree(dir string) error {
	if dir == "" || !filepath.IsAbs(dir) || !strings.HasPrefix(filepath.Base(dir), "meshconform-bench-cold-") {
		return fmt.Errorf("refusing to remove %q: not a cold bench's cache directory", dir)
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755) // best effort: RemoveAll reports what stays
		}
		return nil
	})
	err := os.RemoveAll(dir)
	if err != nil && os.Geteuid() != 0 {
		out, serr := exec.Command("sudo", "-n", "rm", "-rf", "--", dir).CombinedOutput()
		if serr == nil {
			return nil
		}
		err = errors.Join(err, fmt.Errorf("sudo -n rm -rf: %w: %s", serr, strings.TrimSpace(string(out))))
	}
	if err != nil {
		return fmt.Errorf("remove the cold caches %s (remove them by hand: sudo rm -rf %s): %w", dir, dir, err)
	}
	return nil
}

// removeOwnImages removes the Docker images labelled as meshconform's
// (images.OwnerLabel); with no Docker daemon there are none to remove.
func removeOwnImages(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "docker", "images", "-q", "--filter", "label="+images.OwnerLabel+"=true").Output()
	if err != nil {
		return nil // no daemon: setup starts a fresh one, holding none
	}
	ids := strings.Fields(string(out))
	if len(ids) == 0 {
		return nil
	}
	if b, err := exec.CommandContext(ctx, "docker", append([]string{"image", "rm", "-f"}, ids...)...).CombinedOutput(); err != nil {
		return fmt.Errorf("docker image rm: %w: %s", err, b)
	}
	return nil
}
