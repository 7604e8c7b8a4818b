package clusters

import (
	"context"
	"fmt"
	"strings"

	kindexec "sigs.k8s.io/kind/pkg/exec"
)

// A network fault on a cluster meshconform made: iptables rules put on
// every node of the cluster (its pods' traffic passes the node's FORWARD
// chain, the node's own its OUTPUT chain) and taken off again. Only the
// run's own nodes are touched, and only with rules it can name to remove.

// CutOff are the rules that drop every TCP packet between a cluster's
// nodes (and their pods) and addr, answering each with a reset, so both
// ends learn of the cut at their next packet instead of after minutes of
// retransmissions: the pods' packets both ways in FORWARD, the node's own
// to addr in OUTPUT and from addr in INPUT.
func CutOff(addr string) [][]string { return cutRules(addr, nil, nil) }

// CutOffPort is CutOff for one TCP port of addr only (an API server's),
// so nothing else the cluster exchanges with addr (its pods' traffic to
// the same node) is touched.
func CutOffPort(addr string, port int) [][]string {
	p := fmt.Sprint(port)
	return cutRules(addr, []string{"--dport", p}, []string{"--sport", p})
}

// cutRules are the four rules of a cut, to matching to addr and from
// matching what comes back.
func cutRules(addr string, to, from []string) [][]string {
	rule := func(chain, dir string, match []string) []string {
		r := []string{chain, dir, addr, "-p", "tcp"}
		r = append(r, match...)
		return append(r, "-j", "REJECT", "--reject-with", "tcp-reset")
	}
	return [][]string{rule("FORWARD", "-d", to), rule("FORWARD", "-s", from), rule("OUTPUT", "-d", to), rule("INPUT", "-s", from)}
}

// NodeRules inserts (add) or deletes every rule (the arguments after
// `iptables -I` or `-D`: chain and match) on every node of the cluster.
// Deleting a rule that is not there is no error: a repair after a fault
// that was only half set must still succeed.
func (m *Manager) NodeRules(ctx context.Context, name string, add bool, rules [][]string) error {
	kns, err := m.provider.ListNodes(name)
	if err != nil {
		return fmt.Errorf("cluster %s: list nodes: %w", name, err)
	}
	op := "-D"
	if add {
		op = "-I"
	}
	for _, kn := range kns {
		for _, r := range rules {
			out, err := kindexec.CombinedOutputLines(kn.CommandContext(ctx, "iptables", append([]string{"-w", op}, r...)...))
			if err != nil && !(op == "-D" && ruleAbsent(out)) {
				return fmt.Errorf("node %s: iptables %s %s: %w: %s", kn, op, strings.Join(r, " "), err, strings.Join(out, "; "))
			}
		}
	}
	return nil
}

// ruleAbsent says whether iptables -D failed because no such rule exists.
func ruleAbsent(out []string) bool {
	s := strings.Join(out, " ")
	return strings.Contains(s, "does a matching rule exist") || strings.Contains(s, "Bad rule")
}
