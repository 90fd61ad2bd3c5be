// Package chat is the chat application: a client emits serverReceiver with a
// string, and every connected client receives clientReceiver with
// {"clientID": <int>, "message": <string>}. clientIDs are integers handed out
// in connection order from 0, from a Counter that a cluster shares. Plain
// WebSocket clients join the same chat (ConnectPlain): their text messages
// are lines, and they receive each line's JSON.
package chat
