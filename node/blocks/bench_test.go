package blocks

import (
	"bufio"
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// benchSize is the file size of the transfer benchmarks (256 MiB), as in
// the figures of docs/performance.md.
const benchSize = 256 << 20

// cpuTime returns the user+system CPU time the process has used, which
// shows the cost of a transfer independently of how loaded the machine is.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS returns the process's peak resident set size in MB (VmHWM), or 0.
func peakRSS() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkAdd imports a 256 MiB file into a pebble-backed store.
func BenchmarkAdd(b *testing.B) {
	s := newService(b, newHost(b), nil)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := s.AddReader(context.Background(), &randReader{state: uint64(i + 1), n: benchSize}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFetch256MiB moves a 256 MiB file from one host to another over
// loopback and reads it in order on the fetching side (Open + read to the
// end, the path of `shoal cat`/`shoal get`). Each iteration uses a fresh
// fetcher. It reports the time to the first byte and the process's peak
// RSS, which covers both nodes and the provider's import.
func BenchmarkFetch256MiB(b *testing.B) {
	benchFetch(b, true)
}

// BenchmarkFetch256MiBBitswap is the same transfer with the DAG stream
// disabled on the provider, so it goes over bitswap alone.
func BenchmarkFetch256MiBBitswap(b *testing.B) {
	benchFetch(b, false)
}

func benchFetch(b *testing.B, dagStream bool) {
	ha := newHost(b)
	a := newService(b, ha, nil)
	if !dagStream {
		ha.RemoveStreamHandler(ProtocolDAG)
	}
	root, _, err := a.AddReader(context.Background(), &randReader{state: 99, n: benchSize})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	var ttfb, cpu time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		hb := newHost(b)
		s := newService(b, hb, nil)
		connect(b, hb, ha)
		b.StartTimer()
		cpu0 := cpuTime()
		start := time.Now()
		rc, _, err := s.Open(context.Background(), root)
		if err != nil {
			b.Fatal(err)
		}
		var one [1]byte
		if _, err := io.ReadFull(rc, one[:]); err != nil {
			b.Fatal(err)
		}
		ttfb += time.Since(start)
		n, err := io.Copy(io.Discard, rc)
		if err != nil || n != benchSize-1 {
			b.Fatalf("read %d bytes, %v", n, err)
		}
		rc.Close()
		cpu += cpuTime() - cpu0
		b.StopTimer()
		s.Close()
		hb.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(ttfb.Microseconds())/1000/float64(b.N), "ms-first-byte")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(peakRSS(), "MB-peak-RSS")
}

// BenchmarkFirstByte measures Open + first byte of a 64 MiB file on a
// fresh fetcher connected to the provider.
func BenchmarkFirstByte(b *testing.B) {
	ha := newHost(b)
	a := newService(b, ha, nil)
	root, _, err := a.AddReader(context.Background(), &randReader{state: 98, n: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		hb := newHost(b)
		s := newService(b, hb, nil)
		connect(b, hb, ha)
		b.StartTimer()
		start := time.Now()
		rc, _, err := s.Open(context.Background(), root)
		if err != nil {
			b.Fatal(err)
		}
		var one [1]byte
		if _, err := io.ReadFull(rc, one[:]); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		b.StopTimer()
		rc.Close()
		s.Close()
		hb.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms-first-byte")
}

// BenchmarkRawStream256MiB moves 256 MiB over one bare libp2p stream
// between the same kind of hosts as BenchmarkFetch256MiB, with nothing
// stored or verified: the ceiling a fetch is measured against, on the
// machine as it is at the time.
func BenchmarkRawStream256MiB(b *testing.B) {
	const proto = "/shoal/bench/raw/1.0.0"
	ha, hb := newHost(b), newHost(b)
	chunk := make([]byte, 256<<10)
	ha.SetStreamHandler(proto, func(s network.Stream) {
		defer s.Close()
		for sent := 0; sent < benchSize; sent += len(chunk) {
			if _, err := s.Write(chunk); err != nil {
				s.Reset()
				return
			}
		}
	})
	connect(b, hb, ha)
	b.SetBytes(benchSize)
	var cpu time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cpu0 := cpuTime()
		s, err := hb.NewStream(context.Background(), ha.ID(), proto)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, s)
		if err != nil || n != benchSize {
			b.Fatalf("read %d bytes, %v", n, err)
		}
		s.Close()
		cpu += cpuTime() - cpu0
	}
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}
