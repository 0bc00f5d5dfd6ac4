package capacity

import (
	"net"
	"testing"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

// TestScoreParamsAccepted checks that gossipsub accepts the parameters.
func TestScoreParamsAccepted(t *testing.T) {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := pubsub.NewGossipSub(t.Context(), h, PubSubOptions("lab")...); err != nil {
		t.Fatalf("NewGossipSub(PubSubOptions) = %v", err)
	}
	p := PeerScoreParams("lab")
	if p.Topics[Topic("lab")] == nil {
		t.Fatalf("PeerScoreParams has no entry for %s", Topic("lab"))
	}
	for _, ip := range []string{"127.0.0.1", "192.168.1.7", "10.1.2.3", "::1", "fd00::1"} {
		if !inAny(p.IPColocationFactorWhitelist, net.ParseIP(ip)) {
			t.Errorf("%s is not exempt from the colocation penalty", ip)
		}
	}
	if inAny(p.IPColocationFactorWhitelist, net.ParseIP("203.0.113.9")) {
		t.Error("a public address is exempt from the colocation penalty")
	}
}

func inAny(nets []*net.IPNet, ip net.IP) bool {
	for _, n := range nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}
