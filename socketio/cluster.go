package socketio

import (
	"encoding/json"
	"time"
)

// This file holds the few hooks a cluster adapter needs beyond the Adapter
// interface: packets that arrive from other nodes are already encoded, so
// they are sent as they are instead of going through Emit's encoder.

// ValidEventData reports whether data is a valid EVENT payload: a JSON array
// whose first element is a non-reserved event name or a number. A cluster
// adapter checks packets from other nodes with it before delivering them.
func ValidEventData(data json.RawMessage) bool {
	_, err := eventName(data)
	return err == nil
}

// EmitDataWithAck sends an event whose whole payload is already encoded (the
// JSON array [event, ...args] with binary values as placeholders indexing
// attachments) and asks the client to acknowledge it. ack follows the rules
// of EmitWithAck. A broadcast with acknowledgements from another node arrives
// in this form.
func (s *Socket) EmitDataWithAck(data json.RawMessage, attachments [][]byte, timeout time.Duration, ack AckFunc) error {
	if !ValidEventData(data) {
		return invalid("invalid event payload")
	}
	return s.emitWithAck(data, attachments, timeout, ack)
}
