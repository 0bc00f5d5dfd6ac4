package proto

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-msgio"
)

// A Deadliner is the part of a stream a Conn sets deadlines on;
// libp2p's network.Stream implements it.
type Deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// A Conn reads and writes framed messages on one stream. Read and Write may
// be called from different goroutines, but at most one Read and one Write
// at a time.
type Conn struct {
	rw io.ReadWriter
	r  msgio.ReadCloser
	w  msgio.WriteCloser
}

// NewConn returns a Conn over rw, which is usually a network.Stream.
func NewConn(rw io.ReadWriter) *Conn {
	return &Conn{rw: rw, r: msgio.NewVarintReaderSize(rw, MaxMessageSize), w: msgio.NewVarintWriter(rw)}
}

// ErrTimeout is wrapped by Read and Write errors when a step passes its deadline.
var ErrTimeout = errors.New("job protocol step timed out")

// Read reads and decodes the next message, waiting at most timeout (0 means
// no deadline). A frame over MaxMessageSize is rejected before its body is
// read; a body that does not decode wraps ErrMalformed.
func (c *Conn) Read(timeout time.Duration) (Msg, error) {
	if d, ok := c.rw.(Deadliner); ok {
		var t time.Time
		if timeout > 0 {
			t = time.Now().Add(timeout)
		}
		d.SetReadDeadline(t)
	}
	b, err := c.r.ReadMsg()
	if err != nil {
		if isTimeout(err) {
			return nil, fmt.Errorf("proto: read after %v: %w", timeout, ErrTimeout)
		}
		if errors.Is(err, msgio.ErrMsgTooLarge) {
			return nil, fmt.Errorf("proto: frame over %d bytes: %w", MaxMessageSize, ErrMalformed)
		}
		return nil, fmt.Errorf("proto: read: %w", err)
	}
	return Unmarshal(b)
}

// Write encodes m and writes it as one frame, waiting at most timeout
// (0 means no deadline).
func (c *Conn) Write(m Msg, timeout time.Duration) error {
	b, err := Marshal(m)
	if err != nil {
		return err
	}
	if d, ok := c.rw.(Deadliner); ok {
		var t time.Time
		if timeout > 0 {
			t = time.Now().Add(timeout)
		}
		d.SetWriteDeadline(t)
	}
	if err := c.w.WriteMsg(b); err != nil {
		if isTimeout(err) {
			return fmt.Errorf("proto: write %s after %v: %w", m.Type(), timeout, ErrTimeout)
		}
		return fmt.Errorf("proto: write %s: %w", m.Type(), err)
	}
	return nil
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
