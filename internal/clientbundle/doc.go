// Package clientbundle serves the socket.io JavaScript client at
// /socket.io/socket.io.js (and .min.js, and their source maps). The files are
// copied from the pinned socket.io-client npm package by `make bundle` and
// embedded at build time, or served from a directory such as an installed
// node_modules/socket.io-client/dist. A binary built without them still runs
// and explains how to get them.
package clientbundle
