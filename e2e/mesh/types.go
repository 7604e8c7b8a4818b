package mesh

import "sigs.k8s.io/e2e-framework/klient/k8s"

type k8sObject = k8s.Object
