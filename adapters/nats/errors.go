package wsroomnats

import "errors"

// Sentinel errors. The Broker wraps them with the operation that failed, so
// test for them with errors.Is.
var (
	// ErrTooLarge is returned by Publish when the encoded publication is
	// larger than the NATS server's max_payload. The message says both
	// sizes; raise max_payload (see the package documentation) or lower
	// the application's message size limit.
	ErrTooLarge = errors.New("wsroom: publication larger than the NATS server's max_payload")

	// ErrClosed is returned by Publish and Subscribe after Close.
	ErrClosed = errors.New("wsroom: nats broker closed")
)
