// Package scrape reads a server's /metrics in the Prometheus text format,
// for the tests and the soak driver.
package scrape
