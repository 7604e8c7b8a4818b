package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A live cluster changes by itself while a run goes on: controllers
// annotate nodes, CronJobs start jobs. The pair churns the same way, so a
// run whose audit read the platform's own changes as its own would fail
// here.

// opsNamespace holds the platform's CronJob.
const opsNamespace = "acme-ops"

// heartbeat is the node annotation the churn toggles.
const heartbeat = "acme.example/heartbeat"

// cronJob runs image (the cluster's own CoreDNS image, on every node
// already) every minute, as restricted Pod Security admits it.
func cronJob(image string) string {
	return fmt.Sprintf(`apiVersion: batch/v1
kind: CronJob
metadata:
  name: acme-report
  namespace: %s
spec:
  schedule: "* * * * *"
  successfulJobsHistoryLimit: 2
  failedJobsHistoryLimit: 2
  jobTemplate:
    spec:
      activeDeadlineSeconds: 50
      template:
        spec:
          restartPolicy: Never
          securityContext:
            runAsNonRoot: true
            runAsUser: 65532
            seccompProfile: {type: RuntimeDefault}
          containers:
          - name: report
            image: %s
            args: ["-version"]
            securityContext:
              allowPrivilegeEscalation: false
              capabilities: {drop: [ALL]}
            resources:
              requests: {cpu: 10m, memory: 16Mi}
              limits: {cpu: 100m, memory: 64Mi}
`, opsNamespace, image)
}

// churnSetup puts the CronJob on every cluster of the pair.
func churnSetup(ctx context.Context, dir string) error {
	for _, s := range sites {
		image, err := kubectl(ctx, dir, s, nil, "-n", "kube-system", "get", "deployment", "coredns", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
		if err != nil {
			return err
		}
		if _, err := kubectl(ctx, dir, s, nil, "create", "namespace", opsNamespace); err != nil {
			return err
		}
		if _, err := kubectl(ctx, dir, s, strings.NewReader(cronJob(image)), "apply", "-f", "-"); err != nil {
			return err
		}
	}
	return nil
}

// churn annotates every node of the pair every 10 s with the time, for at
// most d (bounded: it stops by itself), or until ctx ends.
func churn(ctx context.Context, dir string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for n := 0; ; n++ {
		for _, s := range sites {
			if _, err := kubectl(ctx, dir, s, nil, "annotate", "nodes", "--all", "--overwrite", heartbeat+"="+strconv.FormatInt(time.Now().Unix(), 10)); err != nil && ctx.Err() == nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			fmt.Printf("churn: %d rounds of node annotations\n", n+1)
			return nil
		case <-tick.C:
		}
	}
}
