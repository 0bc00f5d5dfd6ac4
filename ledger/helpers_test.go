package ledger

import (
	"context"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/shoalnet/shoal/crypto"
)

const testNetwork = "testnet"

// testKey returns a deterministic ed25519 key for seed.
func testKey(t testing.TB, seed int64) crypto.PrivKey {
	t.Helper()
	k, err := keyForSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyForSeed(seed int64) (crypto.PrivKey, error) {
	return crypto.GenerateKey(rand.New(rand.NewSource(seed)))
}

// fixedClock returns a clock that ticks one millisecond per call.
func fixedClock() func() time.Time {
	t := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	return func() time.Time { t = t.Add(time.Millisecond); return t }
}

// openTestLog opens a log in a temp dir and closes it at cleanup.
func openTestLog(t testing.TB, dir string, seed int64) *Log {
	t.Helper()
	l, err := Open(context.Background(), dir, testKey(t, seed), testNetwork, Options{Now: fixedClock()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// appendN appends n note entries.
func appendN(t testing.TB, l *Log, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := l.Append(context.Background(), KindNote, fmt.Appendf(nil, "entry body %d", i)); err != nil {
			t.Fatal(err)
		}
	}
}
