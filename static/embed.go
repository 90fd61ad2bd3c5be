package static

import "embed"

// Files is the chat page: chatClient.html, chatClient.js and chat.css, at the
// root of the file system. The page loads the client library from
// /socket.io/socket.io.js and connects back to the origin that served it.
//
//go:embed chatClient.html chatClient.js chat.css
var Files embed.FS
