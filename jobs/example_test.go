package jobs_test

import (
	"fmt"
	"math/rand"
	"time"

	"github.com/multiformats/go-multicodec"

	"github.com/shoalnet/shoal/crypto"
	"github.com/shoalnet/shoal/jobs"
)

// Example builds a job, signs it as its submitter and decodes it again as a
// worker would.
func Example() {
	key, _ := crypto.GenerateKey(rand.New(rand.NewSource(1))) // use crypto/rand.Reader for real keys
	me, _ := crypto.PeerID(key)
	comp := jobs.Computation{
		Module: crypto.CIDOf(multicodec.Raw, []byte("a module")),
		Args:   []string{"world"},
	}
	env, _ := jobs.NewEnvelope(me, comp, rand.New(rand.NewSource(2)), time.UnixMilli(1764000000000))
	env.Limits.WallTime = 10 * time.Second
	spec, err := jobs.SignSpec(key, env)
	if err != nil {
		panic(err)
	}
	wire, _ := spec.Encode()

	got, err := jobs.DecodeSignedSpec(wire)
	if err != nil {
		panic(err)
	}
	fmt.Println("computation:", got.CompCID)
	fmt.Println("same job:", got.ID == spec.ID)
	fmt.Println("wall time:", got.Envelope.Limits.WallTime)
	// Output:
	// computation: bafyreigttnr5lr2o7jpf5zcqmr546kziopye2kky4vl4d7kzjqtg6q7h3m
	// same job: true
	// wall time: 10s
}
