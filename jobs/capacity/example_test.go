package capacity_test

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/shoalnet/shoal/crypto"
	"github.com/shoalnet/shoal/jobs/capacity"
)

// An advert is sealed by its node and opened, with every check but the
// clock and replay ones, by whoever receives it.
func ExampleOpenAdvert() {
	key, _ := crypto.GenerateKey(rand.NewChaCha8([32]byte{'d', 'e', 'm', 'o'}))
	id, _ := crypto.PeerID(key)
	a := capacity.Advert{
		Peer:        id,
		Network:     "lab",
		Seq:         1,
		Expiry:      time.UnixMilli(1764000000000),
		SlotsTotal:  4,
		SlotsFree:   4,
		Cores:       8,
		MemoryBytes: 16 << 30,
		Runtimes:    []string{capacity.RuntimeWasm},
		Labels:      map[string]string{"region": "eu"},
	}
	sealed, err := a.Seal(key)
	if err != nil {
		fmt.Println(err)
		return
	}
	got, err := capacity.OpenAdvert(sealed)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got.Peer == id, got.SlotsFree, got.Offers("wasm"), capacity.FormatLabels(got.Labels))

	sealed[len(sealed)-1] ^= 1 // break the signature
	_, err = capacity.OpenAdvert(sealed)
	fmt.Println(capacity.ReasonOf(err))
	// Output:
	// true 4 true [region=eu]
	// signature
}
