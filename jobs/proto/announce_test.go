package proto

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func sampleAnnouncement() *Announcement {
	return &Announcement{Spec: []byte("signed spec"), Verdict: "verified", Reason: "3 of 3 results agree",
		Results: [][]byte{[]byte("r1"), []byte("r2"), []byte("r3")}, Finished: time.UnixMilli(1_700_000_000_123)}
}

func TestAnnouncementRoundTrip(t *testing.T) {
	a := sampleAnnouncement()
	b, err := MarshalAnnouncement(a)
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalAnnouncement(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Spec, a.Spec) || got.Verdict != a.Verdict || got.Reason != a.Reason ||
		len(got.Results) != 3 || !got.Finished.Equal(a.Finished) {
		t.Fatalf("UnmarshalAnnouncement(MarshalAnnouncement(a)) = %+v, want %+v", got, a)
	}
	for i := 0; i < len(b); i++ {
		if _, err := UnmarshalAnnouncement(b[:i]); !errors.Is(err, ErrMalformed) {
			t.Errorf("UnmarshalAnnouncement(first %d bytes) = %v, want ErrMalformed", i, err)
		}
	}
	for _, bad := range []*Announcement{
		{Spec: nil, Verdict: "verified", Finished: a.Finished},
		{Spec: []byte("s"), Verdict: "maybe", Finished: a.Finished},
		{Spec: []byte("s"), Verdict: "failed"},
		{Spec: []byte("s"), Verdict: "failed", Finished: a.Finished, Results: [][]byte{nil}},
	} {
		if _, err := MarshalAnnouncement(bad); err == nil {
			t.Errorf("MarshalAnnouncement(%+v) succeeded", bad)
		}
	}
	if ResultsTopic("testnet") != "shoal/testnet/results/1" {
		t.Errorf("ResultsTopic = %q", ResultsTopic("testnet"))
	}
}

func FuzzUnmarshalAnnouncement(f *testing.F) {
	b, err := MarshalAnnouncement(sampleAnnouncement())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := UnmarshalAnnouncement(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again, err := MarshalAnnouncement(a)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding %x gave %x, %v: not canonical", b, again, err)
		}
	})
}

func TestAnnouncementsRoundTrip(t *testing.T) {
	one, err := MarshalAnnouncement(sampleAnnouncement())
	if err != nil {
		t.Fatal(err)
	}
	bodies := [][]byte{one, []byte("second"), one}
	b, err := MarshalAnnouncements(bodies)
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalAnnouncements(b)
	if err != nil || len(got) != 3 || !bytes.Equal(got[0], one) || string(got[1]) != "second" {
		t.Fatalf("UnmarshalAnnouncements = %q, %v", got, err)
	}
	for i := 0; i < len(b); i++ {
		if _, err := UnmarshalAnnouncements(b[:i]); !errors.Is(err, ErrMalformed) {
			t.Errorf("UnmarshalAnnouncements(first %d bytes) = %v, want ErrMalformed", i, err)
		}
	}
	if _, err := UnmarshalAnnouncements(append(bytes.Clone(b), 0)); !errors.Is(err, ErrMalformed) {
		t.Errorf("UnmarshalAnnouncements with a trailing byte = %v, want ErrMalformed", err)
	}
	many := make([][]byte, MaxBatchAnnouncements+1)
	for i := range many {
		many[i] = []byte("x")
	}
	for _, bad := range [][][]byte{nil, many, {bytes.Repeat([]byte("x"), MaxBatchSize)}} {
		if _, err := MarshalAnnouncements(bad); err == nil {
			t.Errorf("MarshalAnnouncements of %d bodies succeeded", len(bad))
		}
	}
	// A count of zero, and an empty body, are malformed.
	for _, b := range [][]byte{{batchTag, 0}, {batchTag, 1, 0}} {
		if _, err := UnmarshalAnnouncements(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("UnmarshalAnnouncements(%x) = %v, want ErrMalformed", b, err)
		}
	}
}

func FuzzUnmarshalAnnouncements(f *testing.F) {
	one, err := MarshalAnnouncement(sampleAnnouncement())
	if err != nil {
		f.Fatal(err)
	}
	b, err := MarshalAnnouncements([][]byte{one, []byte("x")})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{batchTag, 1, 1, 'x'})
	f.Fuzz(func(t *testing.T, b []byte) {
		bodies, err := UnmarshalAnnouncements(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again, err := MarshalAnnouncements(bodies)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding %x gave %x, %v: not canonical", b, again, err)
		}
	})
}
