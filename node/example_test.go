package node_test

import (
	"fmt"

	"github.com/shoalnet/shoal/node"
)

func ExampleParseBootstrap() {
	infos, err := node.ParseBootstrap([]string{
		"/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWEF8eZtoNko9D4js4z8f71J1RqhEQNXuoY64jq7BRHs2x",
		"/ip4/127.0.0.1/udp/4001/quic-v1/p2p/12D3KooWEF8eZtoNko9D4js4z8f71J1RqhEQNXuoY64jq7BRHs2x",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(infos), infos[0].ID, len(infos[0].Addrs))
	_, err = node.ParseBootstrap([]string{"/ip4/127.0.0.1/tcp/4001"})
	fmt.Println(err)
	// Output:
	// 1 12D3KooWEF8eZtoNko9D4js4z8f71J1RqhEQNXuoY64jq7BRHs2x 2
	// config: network.bootstrap[0] = "/ip4/127.0.0.1/tcp/4001" has no /p2p/<peer ID> part; append the bootstrap node's peer ID (shown by: shoal id)
}
