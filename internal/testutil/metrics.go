package testutil

import (
	"context"

	"siogo/internal/scrape"
)

// Metrics is one scrape of a server's /metrics (scrape.Metrics).
type Metrics = scrape.Metrics

// ScrapeMetrics reads base+"/metrics" (scrape.Fetch).
func ScrapeMetrics(ctx context.Context, base string) (Metrics, error) { return scrape.Fetch(ctx, base) }
