// Module wsroom.dev is the WebSocket room layer for Go web applications:
// chat rooms and an echo endpoint that mount on any net/http router.
//
// The packages:
//
//   - wsroom.dev/wsroom: the core. A Server is the chat endpoint (an
//     http.Handler), with an echo endpoint, hooks, a pluggable Store and
//     Broker, and safe limits by default. Start here.
//   - wsroom.dev/wsroom/storetest: the conformance suite every Store passes.
//   - wsroom.dev/adapters: router adapters and the Redis, PostgreSQL and
//     NATS backends, each in its own module so that the core depends only on
//     github.com/coder/websocket.
//   - wsroom.dev/examples/chat: a runnable chat server:
//     go run ./examples/chat
//
// This root package holds only this documentation.
package wsroom
