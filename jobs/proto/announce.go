package proto

import (
	"errors"
	"fmt"
	"time"
)

// TopicPrefix and TopicSuffix frame the gossipsub topic of results
// announcements: "shoal/<network>/results/1".
const (
	TopicPrefix = "shoal/"
	TopicSuffix = "/results/1"
)

// ResultsTopic returns the results announcement topic of network.
func ResultsTopic(network string) string { return TopicPrefix + network + TopicSuffix }

// AnnouncementPayloadType is the payload type of the signed envelope
// (domain shoal/job-announcement/1) that carries an Announcement.
const AnnouncementPayloadType = "shoal/job-announcement"

// Bounds of an announcement.
const (
	MaxAnnouncementSize = 512 << 10
	MaxAnnouncedResults = 64
	maxVerdictSize      = 16
)

// announcementTag is the first byte of an announcement body; an
// incompatible layout gets a new tag.
const announcementTag = 0x41

// An Announcement tells the network how a job ended. Its submitter signs it
// (the envelope), and it carries the signed spec and every signed result,
// so any peer can check the verdict itself.
type Announcement struct {
	Spec     []byte   // the signed job spec
	Verdict  string   // "verified", "mismatch" or "failed"
	Reason   string   // how the verdict was reached
	Results  [][]byte // the signed results, in arrival order
	Finished time.Time
}

// MarshalAnnouncement returns the body encoding of a:
//
//	0x41 || bytes(spec) || string(verdict) || string(reason) ||
//	uint(len(results)) || bytes(result)... || uint(finished, Unix ms)
func MarshalAnnouncement(a *Announcement) ([]byte, error) {
	if err := a.validate(); err != nil {
		return nil, fmt.Errorf("proto: marshal announcement: %w", err)
	}
	e := &encoder{buf: []byte{announcementTag}}
	e.bytes(a.Spec)
	e.bytes([]byte(a.Verdict))
	e.bytes([]byte(a.Reason))
	e.uint(uint64(len(a.Results)))
	for _, r := range a.Results {
		e.bytes(r)
	}
	e.uint(uint64(a.Finished.UnixMilli()))
	if len(e.buf) > MaxAnnouncementSize {
		return nil, fmt.Errorf("proto: announcement of %d bytes, over %d", len(e.buf), MaxAnnouncementSize)
	}
	return e.buf, nil
}

// UnmarshalAnnouncement decodes an announcement body, rejecting (wrapping
// ErrMalformed) anything but the exact encoding of a valid announcement.
// It does not check signatures.
func UnmarshalAnnouncement(b []byte) (*Announcement, error) {
	if len(b) > MaxAnnouncementSize {
		return nil, fmt.Errorf("proto: announcement of %d bytes, over %d: %w", len(b), MaxAnnouncementSize, ErrMalformed)
	}
	if len(b) == 0 || b[0] != announcementTag {
		return nil, fmt.Errorf("proto: announcement does not start with tag %#x: %w", announcementTag, ErrMalformed)
	}
	d := &decoder{buf: b[1:]}
	a := &Announcement{}
	a.Spec = d.bytes(MaxSpecSize)
	a.Verdict = string(d.bytes(maxVerdictSize))
	a.Reason = string(d.bytes(MaxReasonSize))
	n := d.uint(MaxAnnouncedResults)
	for i := uint64(0); i < n && d.err == nil; i++ {
		a.Results = append(a.Results, d.bytes(MaxResultSize))
	}
	ms := d.uint(1 << 53)
	a.Finished = time.UnixMilli(int64(ms))
	if d.err == nil && len(d.buf) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.buf))
	}
	if d.err == nil {
		d.err = a.validate()
	}
	if d.err != nil {
		return nil, fmt.Errorf("proto: announcement: %w: %v", ErrMalformed, d.err)
	}
	return a, nil
}

func (a *Announcement) validate() error {
	switch {
	case len(a.Spec) == 0 || len(a.Spec) > MaxSpecSize:
		return fmt.Errorf("spec is %d bytes, want 1..%d", len(a.Spec), MaxSpecSize)
	case a.Verdict != "verified" && a.Verdict != "mismatch" && a.Verdict != "failed":
		return fmt.Errorf("unknown verdict %q", a.Verdict)
	case len(a.Results) > MaxAnnouncedResults:
		return fmt.Errorf("%d results, at most %d", len(a.Results), MaxAnnouncedResults)
	case a.Finished.UnixMilli() <= 0 || !a.Finished.Equal(time.UnixMilli(a.Finished.UnixMilli())):
		return errors.New("finished time must be after 1970, in whole milliseconds")
	}
	for i, r := range a.Results {
		if len(r) == 0 || len(r) > MaxResultSize {
			return fmt.Errorf("result %d is %d bytes, want 1..%d", i, len(r), MaxResultSize)
		}
	}
	return validText("reason", a.Reason)
}

// AnnouncementsPayloadType is the payload type of the signed envelope
// (domain shoal/job-announcement/1) that carries a batch of announcements
// of one submitter, signed once.
const AnnouncementsPayloadType = "shoal/job-announcements"

// Bounds of a batch of announcements. The batch's envelope must fit a
// gossipsub message (1 MiB); any one announcement fits a batch.
const (
	MaxBatchAnnouncements = 64
	MaxBatchSize          = 960 << 10
)

// batchTag is the first byte of a batch body.
const batchTag = 0x42

// MarshalAnnouncements returns the body encoding of a batch of
// announcement bodies (each from MarshalAnnouncement):
//
//	0x42 || uint(len(bodies)) || bytes(body)...
func MarshalAnnouncements(bodies [][]byte) ([]byte, error) {
	if len(bodies) == 0 || len(bodies) > MaxBatchAnnouncements {
		return nil, fmt.Errorf("proto: batch of %d announcements, want 1..%d", len(bodies), MaxBatchAnnouncements)
	}
	e := &encoder{buf: []byte{batchTag}}
	e.uint(uint64(len(bodies)))
	for _, b := range bodies {
		e.bytes(b)
	}
	if len(e.buf) > MaxBatchSize {
		return nil, fmt.Errorf("proto: batch of announcements of %d bytes, over %d", len(e.buf), MaxBatchSize)
	}
	return e.buf, nil
}

// UnmarshalAnnouncements splits a batch body into its announcement
// bodies, rejecting (wrapping ErrMalformed) anything but the exact
// encoding of 1 to MaxBatchAnnouncements bodies of at most
// MaxAnnouncementSize bytes each. The bodies themselves are not decoded.
func UnmarshalAnnouncements(b []byte) ([][]byte, error) {
	if len(b) > MaxBatchSize {
		return nil, fmt.Errorf("proto: batch of announcements of %d bytes, over %d: %w", len(b), MaxBatchSize, ErrMalformed)
	}
	if len(b) == 0 || b[0] != batchTag {
		return nil, fmt.Errorf("proto: batch of announcements does not start with tag %#x: %w", batchTag, ErrMalformed)
	}
	d := &decoder{buf: b[1:]}
	n := d.uint(MaxBatchAnnouncements)
	if d.err == nil && n == 0 {
		d.err = errors.New("no announcements")
	}
	bodies := make([][]byte, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		body := d.bytes(MaxAnnouncementSize)
		if d.err == nil && len(body) == 0 {
			d.err = fmt.Errorf("announcement %d is empty", i)
		}
		bodies = append(bodies, body)
	}
	if d.err == nil && len(d.buf) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.buf))
	}
	if d.err != nil {
		return nil, fmt.Errorf("proto: batch of announcements: %w: %v", ErrMalformed, d.err)
	}
	return bodies, nil
}
