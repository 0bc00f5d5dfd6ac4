package jobs

import "fmt"

// A State is where a job is in its life. States are typed strings so they
// read well in JSON, logs and the CLI; the list is append-only.
type State string

// The states of a job. A job moves forward through them; Done, Failed and
// Cancelled are terminal.
const (
	StateQueued    State = "queued"    // accepted, waiting for a slot or a worker
	StateScheduled State = "scheduled" // offered to or accepted by a worker
	StateFetching  State = "fetching"  // fetching the module and inputs
	StateRunning   State = "running"   // running in the sandbox
	StateUploading State = "uploading" // storing stdout, stderr and outputs
	StateCommitted State = "committed" // a replica's commitment is in, its result not yet revealed
	StateVerifying State = "verifying" // replica results are being compared
	StateDone      State = "done"      // finished; the result is available
	StateFailed    State = "failed"    // ended without a usable result; see the reason
	StateCancelled State = "cancelled" // stopped by its submitter
)

// States returns every known state in lifecycle order.
func States() []State {
	return []State{StateQueued, StateScheduled, StateFetching, StateRunning, StateUploading,
		StateCommitted, StateVerifying, StateDone, StateFailed, StateCancelled}
}

// Terminal reports whether s is a final state.
func (s State) Terminal() bool {
	return s == StateDone || s == StateFailed || s == StateCancelled
}

// Valid reports whether s is one of the known states.
func (s State) Valid() bool {
	for _, k := range States() {
		if s == k {
			return true
		}
	}
	return false
}

// ParseState returns the State named by s, or an error listing the states.
func ParseState(s string) (State, error) {
	if st := State(s); st.Valid() {
		return st, nil
	}
	return "", fmt.Errorf("jobs: unknown job state %q (want one of %v)", s, States())
}

// String returns s as text.
func (s State) String() string { return string(s) }
