package socketio

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
)

// On sets the handler of an event, like OnEvent, with the event's
// arguments decoded into the handler's parameters:
//
//	nsp.On("chat", func(s *socketio.Socket, text string, to int) { … })
//	nsp.On("add", func(s *socketio.Socket, a, b int) int { return a + b })
//
// handler is a func whose first parameter is a *Socket and whose others
// receive the event's arguments in order, each decoded with encoding/json:
// a []byte parameter receives a binary attachment, and a json.RawMessage
// the argument as it came. Missing arguments leave their parameter's zero
// value; extra ones are dropped. When the client asked for an
// acknowledgement, the handler's results are its arguments (an error
// result, if last, is left out). An event whose arguments do not decode is
// not handled; the server logs why. On panics if handler is not such a
// func.
func (n *Namespace) On(event string, handler any) {
	h, err := typedHandler(handler)
	if err != nil {
		panic(fmt.Sprintf("socketio: On(%q): %v", event, err))
	}
	n.OnEvent(event, h)
}

var (
	socketType  = reflect.TypeFor[*Socket]()
	errorType   = reflect.TypeFor[error]()
	errNotEvent = errors.New("want a func(*socketio.Socket, ...)")
)

// typedHandler turns a func(*Socket, args...) results... into an
// EventHandler.
func typedHandler(fn any) (EventHandler, error) {
	v := reflect.ValueOf(fn)
	if !v.IsValid() {
		return nil, errNotEvent
	}
	t := v.Type()
	if t.Kind() != reflect.Func || t.IsVariadic() || t.NumIn() == 0 || t.In(0) != socketType {
		return nil, errNotEvent
	}
	params := make([]reflect.Type, t.NumIn()-1)
	for i := range params {
		params[i] = t.In(i + 1)
	}
	results := t.NumOut()
	if results > 0 && t.Out(results-1) == errorType {
		results--
	}
	return func(s *Socket, m *Message) {
		in := make([]reflect.Value, 1+len(params))
		in[0] = reflect.ValueOf(s)
		for i, p := range params {
			arg := reflect.New(p)
			if i < len(m.Args) {
				if err := decodeArg(m.Args[i], m.Attachments, arg.Interface()); err != nil {
					s.nsp.srv.log.Warn("socketio: event arguments do not match the handler", "event", m.Event, "arg", i+1, "err", err)
					return
				}
			}
			in[i+1] = arg.Elem()
		}
		out := v.Call(in)
		if !m.WantsAck() {
			return
		}
		ack := make([]any, results)
		for i := range ack {
			ack[i] = out[i].Interface()
		}
		if err := m.Ack(ack...); err != nil {
			s.nsp.srv.log.Warn("socketio: cannot encode an acknowledgement", "event", m.Event, "err", err)
		}
	}, nil
}

// decodeArg decodes one event argument into dst, a pointer: a binary
// placeholder into a *[]byte, anything else with encoding/json.
func decodeArg(arg json.RawMessage, attachments [][]byte, dst any) error {
	switch d := dst.(type) {
	case *json.RawMessage:
		*d = arg
		return nil
	case *[]byte:
		var ph struct {
			Placeholder bool `json:"_placeholder"`
			Num         int  `json:"num"`
		}
		if json.Unmarshal(arg, &ph) == nil && ph.Placeholder && ph.Num >= 0 && ph.Num < len(attachments) {
			*d = attachments[ph.Num]
			return nil
		}
	}
	return json.Unmarshal(arg, dst)
}
