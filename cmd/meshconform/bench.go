package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/meshconform/meshconform/e2e/report"
)

// Bench is the benchmark record of one run: the phase timings and the
// figures worth comparing between versions.
type Bench struct {
	Date              string             `json:"date"`
	KubernetesVersion any                `json:"kubernetes_version"`
	IstioVersion      string             `json:"istio_version"`
	ImageSource       any                `json:"image_source"`
	Phases            map[string]float64 `json:"phase_seconds"`
	Figures           map[string]any     `json:"figures"`
}

// bench turns artifacts/phases.json into artifacts/bench/<istio>-<time>.json.
func bench(artifacts, istioVersion string) error {
	raw, err := os.ReadFile(filepath.Join(artifacts, "phases.json"))
	if err != nil {
		return fmt.Errorf("read the run's report (run make e2e first): %w", err)
	}
	var doc report.Document
	if err := json.Unmarshal(raw, &doc); err != nil {
		return err
	}
	b := Bench{
		Date: time.Now().UTC().Format(time.RFC3339), IstioVersion: istioVersion,
		KubernetesVersion: doc.Figures["kubernetes_version"], ImageSource: doc.Figures["image_source"],
		Phases: map[string]float64{}, Figures: map[string]any{},
	}
	for _, p := range doc.Phases {
		if p.OK && !strings.HasPrefix(p.Name, "image ") {
			b.Phases[p.Name] += p.Seconds
		}
	}
	for k, v := range doc.Figures {
		if !strings.HasPrefix(k, "audit_") {
			b.Figures[k] = v
		}
	}
	out, _ := json.MarshalIndent(b, "", "  ")
	dir := filepath.Join(artifacts, "bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%s.json", istioVersion, time.Now().UTC().Format("20060102T150405Z")))
	if err := os.WriteFile(path, out, 0o644); err != nil {
		return err
	}
	fmt.Println(string(out))
	fmt.Println("written to", path)
	return nil
}
