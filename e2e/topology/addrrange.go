package topology

import (
	"fmt"
	"net/netip"
	"strings"
)

// AddrRange is an inclusive range of addresses, as MetalLB pools are written
// ("172.30.255.200-172.30.255.249").
type AddrRange struct {
	First, Last netip.Addr
}

// ParseAddrRange parses "first-last" or a CIDR.
func ParseAddrRange(s string) (AddrRange, error) {
	if first, last, ok := strings.Cut(s, "-"); ok {
		a, err := netip.ParseAddr(strings.TrimSpace(first))
		if err != nil {
			return AddrRange{}, fmt.Errorf("address range %q: %w", s, err)
		}
		b, err := netip.ParseAddr(strings.TrimSpace(last))
		if err != nil {
			return AddrRange{}, fmt.Errorf("address range %q: %w", s, err)
		}
		if a.BitLen() != b.BitLen() || b.Less(a) {
			return AddrRange{}, fmt.Errorf("address range %q: last address before first", s)
		}
		return AddrRange{a, b}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return AddrRange{}, fmt.Errorf("address range %q: want first-last or a CIDR", s)
	}
	return PrefixRange(p), nil
}

// PrefixRange is every address of p.
func PrefixRange(p netip.Prefix) AddrRange {
	p = p.Masked()
	return AddrRange{p.Addr(), lastAddr(p)}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func (r AddrRange) String() string { return r.First.String() + "-" + r.Last.String() }

// Contains reports whether a is in the range.
func (r AddrRange) Contains(a netip.Addr) bool {
	return !a.Less(r.First) && !r.Last.Less(a)
}

// Within reports whether the whole range lies inside o.
func (r AddrRange) Within(o AddrRange) bool { return o.Contains(r.First) && o.Contains(r.Last) }

// Overlaps reports whether the ranges share an address.
func (r AddrRange) Overlaps(o AddrRange) bool {
	return !r.Last.Less(o.First) && !o.Last.Less(r.First)
}

// Size is the number of addresses (capped at 2^32 for IPv6).
func (r AddrRange) Size() uint64 {
	if r.First.Is4() {
		return uint64(u32(r.Last)-u32(r.First)) + 1
	}
	n := uint64(0)
	for a := r.First; n < 1<<32; a = a.Next() {
		n++
		if a == r.Last {
			break
		}
	}
	return n
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// NodeRange is the part of the Docker network Docker hands container
// addresses from: its lower half. The upper half is left for addresses the
// run hands out itself (MetalLB pools).
func (n Network) NodeRange() netip.Prefix {
	return netip.PrefixFrom(n.Subnet.Masked().Addr(), n.Subnet.Bits()+1)
}

// DefaultPools carves count pools of size addresses from the end of the
// network's subnet (below its broadcast address), the way Istio's
// multicluster CI gives each kind cluster its own MetalLB range.
func (n Network) DefaultPools(count, size int) ([]AddrRange, error) {
	if !n.Subnet.Addr().Is4() {
		return nil, fmt.Errorf("default pools need an IPv4 network, have %s", n.Subnet)
	}
	whole := PrefixRange(n.Subnet)
	end := u32(whole.Last) - 1 // not the broadcast address
	need := uint32(count * size)
	upper := PrefixRange(netip.PrefixFrom(lastAddr(n.NodeRange()).Next(), n.Subnet.Bits()+1))
	if need == 0 || need > u32(upper.Last)-u32(upper.First) {
		return nil, fmt.Errorf("%d pools of %d addresses do not fit the upper half of %s", count, size, n.Subnet)
	}
	pools := make([]AddrRange, count)
	for i := range pools {
		last := end - uint32(i*size)
		pools[i] = AddrRange{fromU32(last - uint32(size) + 1), fromU32(last)}
	}
	return pools, nil
}

func fromU32(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
