// Package static holds the chat page that the server shows at "/".
package static
