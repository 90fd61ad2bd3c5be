// Package eioparser encodes and decodes Engine.IO packets and polling
// payloads, revisions 3 and 4, for both ends of a connection: the server in
// package engineio, and the test clients and load generator that talk to
// it. It does no I/O.
//
// Revision 4 joins the packets of a polling payload with the record
// separator 0x1e and carries binary messages as "b<base64>". Revision 3 frames
// each packet as "<length>:<packet>", with lengths in UTF-16 code units, or,
// when the client takes binary, uses the binary form described in
// payload_v3.go.
package eioparser
