// Package dist implements the distribution of jobs across Shoal peers: the
// submitter's job manager, which places a job's replicas on workers picked
// from the capacity view, retries them, runs commit-then-reveal, decides the
// verdict by quorum, persists every job and resumes unfinished ones after a
// restart; and the worker, which serves the /shoal/job/1.0.0 protocol and
// runs accepted offers through the node's local runner.
//
// # Submitting
//
// [Manager.Submit] stores the signed spec under /job/<job CID> in the
// datastore it was given and starts the job. For each replica the manager
// asks [sched.Pick] for a worker (never two replicas on one peer), opens a
// stream and sends an offer. A decline, a timeout, a broken stream or a
// worker that fails around the run (it could not fetch an input) frees the
// replica for another worker, until the job's retry budget (replicas +
// Retries offers; "busy" declines are free) or its deadline is spent.
// While a replica cannot be placed, [Status].Blocker says why in plain
// words.
//
// # Commit, then reveal
//
// With more than one replica each worker first sends a signed commitment
// ([quorum.Commit]) to its result record's CID. When every replica has
// committed, or CommitWait after the first commitment, the manager asks the
// committed workers for their results; a result that does not match its
// commitment is rejected. No worker learns another's result before it is
// bound to its own.
//
// # Verdict and announcement
//
// When every replica has a result or has failed, [quorum.Decide] gives the
// verdict: verified (quorum results agree on exit code, stdout and outputs),
// mismatch or failed. Every signed result is kept. The verdict is published
// on gossipsub topic shoal/<network>/results/1 by [Gossip]; every node
// checks an announcement (signatures, and that the results give the
// announced verdict) and stores it, so [Manager.Status] answers for jobs
// submitted anywhere.
//
// # Ledger
//
// With a [jobs.Recorder] (the node's ledger), the manager records a
// job.submitted entry when a job starts and a job.verdict entry, holding
// every signed result, before the job is reported ended; the worker records
// job.executed before its result or commitment leaves it, and withholds a
// result it cannot record. Failures to record are logged and shown in
// [Status].Ledger. ManagerConfig.Convicted keeps peers with fork evidence
// against them out of the schedule, and ManagerConfig.Ended lets the node
// replicate its workers' ledgers when a job ends. Bodies: docs/ledger.md.
//
// The wire formats are in package proto and docs/protocol.md ("Jobs").
package dist
