package dht_test

import (
	"fmt"

	"github.com/shoalnet/shoal/dht"
)

func ExampleRendezvousCID() {
	// Every member of network "testnet" provides this CID in the DHT.
	fmt.Println(dht.Rendezvous("testnet"))
	fmt.Println(dht.RendezvousCID("testnet"))
	// Output:
	// shoal:testnet
	// bafkreid3oacibmftjuwgkkdcd66mbniizxc7clgkznt7u3m6m27tsi5pkq
}
