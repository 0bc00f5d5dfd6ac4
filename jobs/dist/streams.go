package dist

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoalnet/shoal/jobs/proto"
)

// Bounds of the submitter's idle job streams.
const (
	// streamIdle is how long a stream may wait for its next offer; the
	// worker waits longer (workerIdleTimeout), so it is normally the
	// submitter that closes a stream.
	streamIdle = 30 * time.Second
	// maxIdleStreams is how many idle streams are kept per worker, about
	// as many as offers run at once on one.
	maxIdleStreams = 8
)

// A jobStream is the submitter's end of one exchange: a stream of its own
// or one that carried earlier exchanges.
type jobStream struct {
	conn   *proto.Conn
	s      stream
	ns     network.Stream // nil for the in-memory pipe to this node's worker
	reused bool           // it carried an earlier exchange
}

// reset aborts the stream; it is not used again.
func (js *jobStream) reset() {
	if js.ns != nil {
		js.ns.Reset()
		return
	}
	js.s.Close()
}

// A streamPool keeps the idle job streams of a submitter, per worker, for
// the next offer to the same worker. Its methods are safe for concurrent
// use.
type streamPool struct {
	mu     sync.Mutex
	idle   map[peer.ID][]idleStream // newest last
	closed bool
}

type idleStream struct {
	js    *jobStream
	since time.Time
}

// get returns an idle stream to p that may still be in use, or nil.
// Streams idle for too long are closed on the way.
func (sp *streamPool) get(p peer.ID) *jobStream {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	list := sp.idle[p]
	for len(list) > 0 {
		last := list[len(list)-1]
		list = list[:len(list)-1]
		if time.Since(last.since) < streamIdle {
			sp.setLocked(p, list)
			last.js.reused = true
			return last.js
		}
		last.js.ns.Close()
	}
	sp.setLocked(p, list)
	return nil
}

// put keeps js, whose exchange has ended cleanly, for the next offer to
// p; it closes it when the pool is full or closed.
func (sp *streamPool) put(p peer.ID, js *jobStream) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.closed || len(sp.idle[p]) >= maxIdleStreams || js.ns.Protocol() != proto.ID {
		js.ns.Close()
		return
	}
	if sp.idle == nil {
		sp.idle = make(map[peer.ID][]idleStream)
	}
	sp.idle[p] = append(sp.idle[p], idleStream{js: js, since: time.Now()})
}

func (sp *streamPool) setLocked(p peer.ID, list []idleStream) {
	if len(list) == 0 {
		delete(sp.idle, p)
		return
	}
	sp.idle[p] = list
}

// sweep closes the streams idle for streamIdle or longer.
func (sp *streamPool) sweep() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for p, list := range sp.idle {
		keep := list[:0]
		for _, is := range list {
			if time.Since(is.since) < streamIdle {
				keep = append(keep, is)
			} else {
				is.js.ns.Close()
			}
		}
		sp.setLocked(p, keep)
	}
}

// close closes every idle stream; put closes what comes back later.
func (sp *streamPool) close() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.closed = true
	for _, list := range sp.idle {
		for _, is := range list {
			is.js.ns.Close()
		}
	}
	sp.idle = nil
}

// sweepStreams closes idle streams now and then until the manager closes.
func (m *Manager) sweepStreams() {
	defer m.wg.Done()
	t := time.NewTicker(streamIdle / 2)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			m.streams.close()
			return
		case <-t.C:
			m.streams.sweep()
		}
	}
}

// open returns a stream for an offer to p: an idle one to p if pooled is
// true and there is one, else a new one; to this node itself it is an
// in-memory pipe to the local worker.
func (m *Manager) open(ctx context.Context, p peer.ID, pooled bool) (*jobStream, error) {
	if p == m.self {
		if m.cfg.Local == nil {
			return nil, fmt.Errorf("this node runs no worker")
		}
		a, b := net.Pipe()
		m.cfg.Local.serveLocal(b)
		return &jobStream{conn: proto.NewConn(a), s: a}, nil
	}
	if pooled {
		if js := m.streams.get(p); js != nil {
			return js, nil
		}
	}
	s, err := m.cfg.Host.NewStream(ctx, p, proto.ID, proto.ID10)
	if err != nil {
		return nil, fmt.Errorf("open %s stream to %s: %w", proto.ID, p, err)
	}
	return &jobStream{conn: proto.NewConn(s), s: s, ns: s}, nil
}

// release ends js's use by one exchange that ended cleanly: a libp2p
// stream goes back to the pool, the pipe to this node's worker is closed.
func (m *Manager) release(p peer.ID, js *jobStream) {
	if js.ns == nil {
		js.s.Close()
		return
	}
	m.streams.put(p, js)
}
