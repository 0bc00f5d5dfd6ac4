package ledger_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"time"

	"github.com/shoalnet/shoal/crypto"
	"github.com/shoalnet/shoal/ledger"
)

// Example records two entries, proves the first is in a signed checkpoint,
// and verifies an export of the log without trusting it.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ledger-example")
	defer os.RemoveAll(dir)
	key, _ := crypto.GenerateKey(rand.New(rand.NewSource(1)))
	clock := func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }

	l, err := ledger.Open(ctx, dir, key, "example", ledger.Options{Now: clock})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	first, _ := l.Append(ctx, ledger.KindJobSubmitted, []byte("job bafy..."))
	second, _ := l.Append(ctx, ledger.KindJobVerdict, []byte("verified"))
	fmt.Println(second.Seq, second.Prev == first.CID())

	cp, _ := l.Checkpoint()
	proof, _ := l.ProveEntry(0, cp.Size)
	fmt.Println("inclusion:", ledger.CheckInclusion(proof, cp.Size, cp.Hash, 0, first.Encoded()))

	var exp bytes.Buffer
	l.Export(ctx, &exp)
	rep, err := ledger.VerifyExport(ctx, &exp, l.Origin())
	fmt.Println("verified:", rep.Entries, err)
	// Output:
	// 1 true
	// inclusion: <nil>
	// verified: 2 <nil>
}
