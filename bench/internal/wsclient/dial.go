package wsclient

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Dialer holds the options of Dial. The zero value is ready to use.
type Dialer struct {
	// ReadBufferSize is the size of the connection's bufio.Reader. Larger
	// messages are read straight into the message buffer. Default 4096.
	ReadBufferSize int

	// ReadLimit is the largest message, after reassembly, that ReadMessage
	// accepts; a larger one fails with ErrTooBig. Default 64 MiB.
	ReadLimit int64

	// NetDialer dials the TCP connection. Default: a zero net.Dialer.
	NetDialer *net.Dialer
}

// Dial opens a WebSocket connection to rawURL (ws:// or http://) with the
// default Dialer, offering subprotocol if it is not empty. See
// Dialer.Dial.
func Dial(ctx context.Context, rawURL, subprotocol string) (*Conn, error) {
	var d Dialer
	return d.Dial(ctx, rawURL, subprotocol)
}

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// Dial opens a WebSocket connection to rawURL (ws:// or http://; wss is not
// supported), offering subprotocol if it is not empty. The handshake must
// answer 101 with the right Sec-WebSocket-Accept, no extension, and the
// offered subprotocol. ctx bounds the dial and the handshake only.
func (d *Dialer) Dial(ctx context.Context, rawURL, subprotocol string) (*Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("wsclient: dial: %w", err)
	}
	switch u.Scheme {
	case "ws", "http":
	default:
		return nil, fmt.Errorf("wsclient: dial %s: unsupported scheme %q", rawURL, u.Scheme)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	nd := d.NetDialer
	if nd == nil {
		nd = &net.Dialer{}
	}
	nc, err := nd.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("wsclient: dial %s: %w", rawURL, err)
	}
	c, err := d.handshake(ctx, nc, u, subprotocol)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("wsclient: handshake %s: %w", rawURL, err)
	}
	return c, nil
}

func (d *Dialer) handshake(ctx context.Context, nc net.Conn, u *url.URL, subprotocol string) (*Conn, error) {
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	var nonce [16]byte
	rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])

	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\n", u.RequestURI(), u.Host)
	b.WriteString("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n")
	fmt.Fprintf(&b, "Sec-WebSocket-Key: %s\r\n", key)
	if subprotocol != "" {
		fmt.Fprintf(&b, "Sec-WebSocket-Protocol: %s\r\n", subprotocol)
	}
	b.WriteString("\r\n")
	if _, err := nc.Write([]byte(b.String())); err != nil {
		return nil, handshakeErr(ctx, err)
	}

	size := d.ReadBufferSize
	if size <= 0 {
		size = 4096
	}
	br := bufio.NewReaderSize(nc, size)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return nil, handshakeErr(ctx, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, fmt.Errorf("status %s, want 101", resp.Status)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		return nil, fmt.Errorf("header Upgrade: %q, want websocket", resp.Header.Get("Upgrade"))
	}
	if !headerHasToken(resp.Header, "Connection", "upgrade") {
		return nil, fmt.Errorf("header Connection: %q, want Upgrade", resp.Header.Get("Connection"))
	}
	sum := sha1.Sum([]byte(key + acceptGUID))
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		return nil, fmt.Errorf("header Sec-WebSocket-Accept: %q, want %q", got, want)
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		return nil, fmt.Errorf("unrequested extension %q", ext)
	}
	proto := resp.Header.Get("Sec-WebSocket-Protocol")
	if proto != subprotocol {
		return nil, fmt.Errorf("subprotocol %q, want %q", proto, subprotocol)
	}
	if !stop() {
		return nil, ctx.Err()
	}
	nc.SetDeadline(time.Time{})
	limit := d.ReadLimit
	if limit <= 0 {
		limit = 64 << 20
	}
	return &Conn{nc: nc, br: br, subprotocol: proto, readLimit: limit}, nil
}

// handshakeErr prefers the context's error to the deadline error it caused.
func handshakeErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
