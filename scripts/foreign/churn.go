package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A live cluster changes by itself while a run goes on: controllers
// annotate nodes, CronJobs start jobs, operators edit config maps and
// RBAC in the mesh's own namespace and cluster-wide. The pair churns the
// same way, outside the audit's scope (nodes, the CronJob's namespace) and
// inside it (the istio namespace, a ClusterRole), so a run whose audit read the
// platform's own changes as its own would fail here.

// opsNamespace holds the platform's CronJob.
const opsNamespace = "acme-ops"

// heartbeat is the annotation the churn moves on the nodes and on the
// objects of inScope.
const heartbeat = "acme.example/heartbeat"

// inScope are the platform's objects inside the audit's scope that the
// churn annotates (kubectl's resource and name, and namespace flags):
// made by churnSetup, under kubectl's field managers, never the run's.
var inScope = [][]string{
	{"configmap", "acme-inventory", "-n", istioNamespace},
	{"clusterrole", "acme-auditor"},
}

// reportEvery is how many rounds apart the churn adds a config map to
// the istio namespace (an operator's report): others' additions in the scope.
const reportEvery = 6

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
		if _, err := kubectl(ctx, dir, s, nil, "-n", istioNamespace, "create", "configmap", "acme-inventory", "--from-literal=owner=acme-ops"); err != nil {
			return err
		}
		if _, err := kubectl(ctx, dir, s, nil, "create", "clusterrole", "acme-auditor", "--verb=get", "--resource=configmaps"); err != nil {
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
		now := heartbeat + "=" + strconv.FormatInt(time.Now().Unix(), 10)
		for _, s := range sites {
			calls := [][]string{{"annotate", "nodes", "--all", "--overwrite", now}}
			for _, o := range inScope {
				calls = append(calls, append([]string{"annotate", "--overwrite", o[0], o[1], now}, o[2:]...))
			}
			if n%reportEvery == reportEvery-1 {
				calls = append(calls, []string{"-n", istioNamespace, "create", "configmap", fmt.Sprintf("acme-report-%d", n/reportEvery), "--from-literal=round=" + strconv.Itoa(n)})
			}
			for _, c := range calls {
				if _, err := kubectl(ctx, dir, s, nil, c...); err != nil && ctx.Err() == nil {
					return err
				}
			}
		}
		select {
		case <-ctx.Done():
			fmt.Printf("churn: %d rounds of annotations, %d reports added\n", n+1, (n+1)/reportEvery)
			return nil
		case <-tick.C:
		}
	}
}
