// Package jobs implements the vocabulary of Shoal jobs: the job spec (a
// computation wrapped in an envelope), its canonical DAG-CBOR encoding and
// CIDs, the submitter-signed spec, the worker-signed result record, and the
// job states. The sandbox that runs a job (jobs/sandbox), the pipeline that
// runs one on a node (jobs/local) and the distribution across peers build
// on these types.
//
// # Computation and envelope
//
// A [Computation] is everything that determines a job's output: the
// runtime, the module CID, the inputs (mount name → CID), args and env. It
// has a CID of its own, and the sandbox seeds the program's clock and
// random source from it, so every run of the same computation gives the
// same bytes.
//
// An [Envelope] embeds the computation and adds what does not change the
// output: limits, replicas and quorum, the submitter's peer ID, a nonce,
// the creation time and label constraints. The CID of the envelope's
// encoding is the job ID.
//
// # Encoding
//
// Every record is a DAG-CBOR map (strict: canonical key order, minimal
// integers, no floats, no indefinite lengths); CIDs are CIDv1, codec
// dag-cbor (0x71), sha2-256. Decoders check the size first, decode
// strictly, re-encode and require the same bytes, then reject unknown
// versions, unknown or missing fields and out-of-range values with an error
// naming the field, for example "jobs: envelope.limits.memory: missing
// field". The codec is github.com/fxamacker/cbor over typed structs that
// mirror the maps below; since a decoded record must re-encode to its
// exact input, anything the structs cannot represent, and any other
// encoding of the same value, is rejected (cbor.go has the details).
// Hashes of embedded records, such as the computation CID of a decoded
// envelope, are taken over their exact bytes.
//
//	envelope    {version: 1, computation: {...}, limits: {...}, replicas: int,
//	             quorum: int, submitter: bytes(peer ID), nonce: bytes(8..32),
//	             created_ms: int, constraints: {string: string}}
//	computation {runtime: "wasm32-wasip1/1", module: link, inputs: {name: link},
//	             args: [string], env: {string: string}}
//	limits      {wall_ms: int, memory: int, stdout: int, stderr: int, outputs: int}
//	signed spec {envelope: bytes(envelope encoding), sig: bytes}
//	result      {version: 1, job: link, computation: link, worker: bytes(peer ID),
//	             exit_code: int, failure: string, reason: string, stdout: link,
//	             stderr: link, outputs: link, wall_us: int, peak_memory: int}
//	signed result {result: bytes(result encoding), sig: bytes}
//
// Signatures are crypto.Sign detached signatures over the inner bytes, in
// domain crypto.DomainJobSpec (by the submitter) or crypto.DomainJobResult
// (by the worker); the signer's key is the one embedded in its ed25519
// peer ID.
//
// The bodies of the ledger entries the jobs subsystem records
// (job.submitted, job.executed, job.verdict) are DAG-CBOR records of the
// same kind ([SubmittedEntry], [ExecutedEntry], [VerdictEntry]), written
// through the [Recorder] interface so that package jobs never imports the
// ledger; docs/ledger.md specifies them.
//
// Compatibility: every field is required and unknown fields are rejected,
// so a new field or a changed meaning needs a new version (and a new
// decoder beside the old one). docs/jobs.md specifies the format and the
// limits for users.
package jobs
