package pipeline

import "fmt"

// The stage contract. Every stage, whatever it decides, has the same shape:
//
//   - a package with its own configuration section (a Config struct) and a
//     shared, compiled form made once per node (New(Config));
//   - a declaration, StageDef: its name, what it decides, its section, its
//     own counters and drop reasons (as a VPP node declares its errors);
//   - a StageMaker (the shared form) whose NewStage(*Env) makes the
//     instance of one worker: the same constructor for every stage;
//   - the instance, a Stage: Process per message, and the optional parts of
//     the contract, StartBatch (BatchStarter) once per batch and Resume
//     (Resumer), called on the very stage that parked a message when its
//     helper's answer comes back.
//
// The order of the stages is not here: it is the chain file
// (pipeline/chain), which every worker of the daemon, of sipreplay, of the
// benchmarks and of the tests is built from.

// Stage is one worker's instance of a stage. It belongs to that worker (it
// may keep per-core scratch state without locks) and must not allocate or
// block in Process.
type Stage interface {
	// Process looks at c and decides. To send something it fills a buffer
	// from c.TxBuf and returns c.Send/c.Reply, or returns c.Respond; to
	// discard it returns c.Drop or c.DropOwn; to wait on I/O it returns
	// c.Park.
	Process(c *Ctx) Verdict
}

// BatchStarter is the optional per-batch hook of the contract: a stage
// that refreshes per-batch state (a configuration snapshot, commands from
// the operator) does it once per loop iteration rather than per message.
// lastRx is how many datagrams the previous iteration received: a worker
// whose batches keep coming back full is falling behind (overload control).
type BatchStarter interface {
	StartBatch(now int64, lastRx int)
}

// Resumer is the part of the contract of a stage that parks: when the
// helper answers, the message is loaded back (parsed) and Resume is
// called on the same stage with c.Answer set. Its verdict is handled as
// Process's: Continue goes on with the next stage.
type Resumer interface {
	Resume(c *Ctx) Verdict
}

// Refuser is the optional part of the contract of a stage whose work on
// a request must be undone when the node itself refuses the request
// further on: when a later stage of the chain (or the park fallback of a
// later stage) answers the request with a final failure (300-699),
// Refused is called on every earlier stage that implements it, on the
// worker, after the response is built. No response comes back through the
// node for a request the node answered, so this is the only moment left:
// the media stage deletes the relay call an INVITE it anchored opened.
// Refused must not allocate, block, or touch c's transmit buffer; c.Msg is
// the request as the answering stage saw it.
type Refuser interface {
	Refused(c *Ctx, status int)
}

// StageDef is what a stage declares about itself. Counters and drop
// reasons are declared, not discovered: the worker sizes their per-core
// slots from here and the exporter names them from here.
type StageDef struct {
	// Name labels the stage in the chain file, counters and logs.
	Name string
	// Doc says in one line what the stage decides (README, chain drawing).
	Doc string
	// Section is its config.toml section ("[guard]"), "" when it has none
	// of its own.
	Section string
	// Counters are the stage's own per-core counters (Env.Counters), in
	// the order of its slots.
	Counters []CounterDef
	// Drops are the stage's own drop reasons (Ctx.DropOwn), counted per
	// stage and, in the node's drop count, as DropPolicy. DropsMetric and
	// DropsHelp name their family (label "reason"); without a name they
	// are exported only within sipedge_dropped_total.
	Drops                  []string
	DropsMetric, DropsHelp string
	// Parks says the stage parks messages: it must implement Resumer.
	Parks bool
}

// StageMaker makes one worker's instance of a stage. Every stage package's
// shared form implements it.
type StageMaker interface {
	Def() *StageDef
	NewStage(env *Env) (Stage, error)
}

// Env is what a worker gives a stage it makes: who it is, the stage's own
// per-core counters and the helpers it may park on. It is valid only
// during NewStage, except for what it returns.
type Env struct {
	// Worker is the worker's ID.
	Worker int
	// Counters are the stage's declared counters on this worker (plain
	// fields for the stage, published by the worker once per batch).
	Counters Counters
	// Drops are the counts of the stage's own drop reasons on this worker,
	// kept by the worker's chain: the stage only reads them (Load).
	Drops Counters

	def *StageDef
	p   *parker
}

// Helper registers h as a helper this stage parks on, with the fallback a
// message gets when it cannot be parked or its answer is late, and returns
// the handle to give Ctx.Park. A stage that parks declares Parks.
func (e *Env) Helper(h Helper, fb Fallback) (HelperRef, error) {
	if !e.def.Parks {
		return HelperRef{}, fmt.Errorf("pipeline: stage %q registers a helper but its StageDef does not declare Parks", e.def.Name)
	}
	if e.p == nil { // a Solo: Process may return Park, nothing is parked
		return HelperRef{}, nil
	}
	return e.p.register(h, fb)
}

// HelperRef names a helper of one worker for Ctx.Park. The zero value is
// no helper.
type HelperRef struct{ i int32 } // index + 1

// Fallback is what a message gets when it cannot be parked (pool full, too
// large) or when its helper does not answer in time.
type Fallback struct {
	// Drop drops silently (the client's retransmission retries) instead of
	// answering 503 Service Unavailable with Retry-After.
	Drop bool
	// RetryAfter is the Retry-After of the 503, in seconds (5 when 0).
	RetryAfter int
}

// Verdict is what a stage decides for one message.
type Verdict uint8

// Verdicts. Only Continue passes the message to the next stage; the others
// end its run (Park until the helper answers).
const (
	// Continue hands the message to the next stage.
	Continue Verdict = iota
	// Forward sends the message the stage built (Ctx.Send) to an address.
	Forward
	// Respond sends the response the stage built (Ctx.Respond, Ctx.Reply)
	// back to the message's source.
	Respond
	// Drop discards the message, counted under the reason given to Ctx.Drop.
	Drop
	// Park copies the message aside until an async helper answers
	// (Ctx.Park); the same stage's Resume gets it back.
	Park
	numVerdicts
)

var verdictNames = [numVerdicts]string{"continue", "forward", "respond", "drop", "park"}

func (v Verdict) String() string {
	if v < numVerdicts {
		return verdictNames[v]
	}
	return "invalid"
}

// NumVerdicts is the size of the verdict set.
const NumVerdicts = int(numVerdicts)

// DropReason says why the node dropped a message. The set is fixed so that
// every drop lands in a per-core counter without a map or a string; a
// stage's own reasons are declared in its StageDef and count here as
// DropPolicy.
type DropReason uint8

// Drop reasons.
const (
	DropNone DropReason = iota
	// DropUnparsable: the message failed to parse and deserves no answer
	// (a response, an ACK, or a start line that is not SIP).
	DropUnparsable
	// DropNoAnswer: a response was due but the message may not be answered
	// (an ACK, or a response).
	DropNoAnswer
	// DropAckToSelf: an ACK for a response this node generated.
	DropAckToSelf
	// DropResponseNotOurs: a response whose top Via is not ours (RFC 3261 16.7).
	DropResponseNotOurs
	// DropResponseNoNextVia: a response with only our Via: nowhere to send it.
	DropResponseNoNextVia
	// DropUnresolved: the next hop is a host name; the hot path never resolves.
	DropUnresolved
	// DropNoBackend: no backend is up and the message may not be answered.
	DropNoBackend
	// DropNoTxBuffer: the port had no transmit buffer.
	DropNoTxBuffer
	// DropBuildFailed: the outgoing message did not fit the transmit buffer.
	DropBuildFailed
	// DropParkFull: the park pool had no slot (fallback configured as drop).
	DropParkFull
	// DropParkTimeout: the helper did not answer in time (fallback drop).
	DropParkTimeout
	// DropParkTooLarge: the message is larger than a park slot.
	DropParkTooLarge
	// DropStopping: the message was parked when the worker stopped.
	DropStopping
	// DropNoVerdict: every stage said Continue, or a stage returned Forward
	// or Respond without building anything: a stage bug, counted.
	DropNoVerdict
	// DropPolicy: a stage's policy refused the message (its own reasons,
	// StageDef.Drops: guard).
	DropPolicy
	// DropHelperError: the helper answered that it failed (a credential
	// store error) and the stage's fallback is to drop.
	DropHelperError
	// DropPanic: a stage panicked on the message (a bug, logged once a
	// minute with a hash of the datagram); the worker went on.
	DropPanic
	// DropTooLarge: longer than the node's largest message, with no Via
	// in its first bytes to answer 513 to.
	DropTooLarge
	numDropReasons
)

var dropNames = [numDropReasons]string{
	"none", "unparsable", "no-answer", "ack-to-self", "response-not-ours",
	"response-no-next-via", "next-hop-unresolved", "no-backend", "no-tx-buffer",
	"build-failed", "park-full", "park-timeout", "park-too-large", "stopping",
	"no-verdict", "policy", "helper-error", "panic", "too-large",
}

func (r DropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return "invalid"
}

// NumDropReasons is the size of the fixed drop reason set.
const NumDropReasons = int(numDropReasons)

// stageOf wraps a ready instance as a StageMaker, for tests and tools that
// make their own stages.
type stageOf struct {
	def *StageDef
	s   Stage
}

func (m stageOf) Def() *StageDef               { return m.def }
func (m stageOf) NewStage(*Env) (Stage, error) { return m.s, nil }

// StageOf wraps an instance already made (for one worker only) as a
// StageMaker named name: tests' ad hoc stages.
func StageOf(name string, s Stage) StageMaker {
	_, parks := s.(Resumer)
	return stageOf{def: &StageDef{Name: name, Parks: parks}, s: s}
}
