package main

import "encoding/json"

// The events every peer sends (PROTOCOL.md). Each is encoded once per
// broadcast and the same bytes go to every member.

type presenceEvent struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

type messageEvent struct {
	Type string `json:"type"`
	From string `json:"from"`
	Text string `json:"text"`
}

// joinEvent encodes {"type":"join","name":NAME}.
func joinEvent(name string) []byte {
	return encode(presenceEvent{Type: "join", Name: name})
}

// leaveEvent encodes {"type":"leave","name":NAME}.
func leaveEvent(name string) []byte {
	return encode(presenceEvent{Type: "leave", Name: name})
}

// chatEvent encodes {"type":"message","from":FROM,"text":TEXT} for the
// text frame a member sent: TEXT is the frame's "text" field when the frame
// is JSON, else the whole frame.
func chatEvent(from string, frame []byte) []byte {
	var in struct {
		Text string `json:"text"`
	}
	text := string(frame)
	if json.Unmarshal(frame, &in) == nil {
		text = in.Text
	}
	return encode(messageEvent{Type: "message", From: from, Text: text})
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // a struct of strings always encodes
	}
	return b
}
