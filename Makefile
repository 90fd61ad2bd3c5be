# make run   - the chat on http://127.0.0.1:3000/ (single node, in memory)
# make test  - installs what the tests need, then vet + race-enabled tests

GO        ?= go
BUNDLE    := internal/clientbundle/dist
CLIENTDIR := node_modules/socket.io-client/dist
BUNDLE_FILES := socket.io.js socket.io.js.map socket.io.min.js socket.io.min.js.map
ADMINUI   := internal/adminui/dist/ui

.PHONY: run test setup deps bundle vet build clean cluster bench bench-scale bench-recovery bench-cluster fuzz soak soak-cluster

run: bundle
	$(GO) run ./cmd/chatserver $(ARGS)

# The tools (load generator, benchmark runner, soak driver) and the example
# programs are nested modules, tools/ and examples/, that ./... does not
# reach; the integration tests build and run the examples.
test: setup vet
	$(GO) test -race -count=1 -timeout 14m ./...
	cd tools && $(GO) test -race -count=1 ./...

setup: deps bundle

# System packages the integration tests drive (redis-server, nginx, chromium),
# installed through apt-get only when missing.
deps:
	scripts/install-deps.sh

# A registry that stalls fails one attempt (after a minute), not the
# build: up to three.
node_modules/.package-lock.json: package.json package-lock.json
	@for attempt in 1 2 3; do \
		npm ci --no-audit --no-fund --fetch-timeout=60000 && exit 0; \
		echo "npm ci failed (attempt $$attempt of 3)"; sleep 5; \
	done; exit 1
	@touch $@

# The socket.io client bundle served at /socket.io/socket.io.js, embedded
# into the binary from $(BUNDLE), and the Admin UI dashboard served at
# /admin/ with -admin, embedded from $(ADMINUI).
bundle: node_modules/.package-lock.json
	@for f in $(BUNDLE_FILES); do cp $(CLIENTDIR)/$$f $(BUNDLE)/$$f; done
	@scripts/adminui.sh $(ADMINUI)

vet:
	gofmt -l . | (! grep .) || (echo "gofmt needed on the files above"; exit 1)
	$(GO) vet ./...
	cd tools && $(GO) vet ./...
	cd examples && $(GO) vet ./...

build: bundle
	$(GO) build -o bin/ ./cmd/...

# Three nodes, Redis and nginx round robin on http://127.0.0.1:3000/, no Docker.
cluster: bundle
	scripts/cluster.sh $(ARGS)

# Our server beside the reference Node.js server, side by side; writes
# bench/RESULTS.md and bench/results.png.
bench: setup
	scripts/bench.sh $(ARGS)

# Idle WebSocket connections up to the open-file limit (memory per
# connection at 5k, 10k and the maximum, time to connect), one line to every
# client, a line a second for a minute, and 10k idle polling sessions: our
# server beside the Node.js one, within 20 minutes; writes bench/scale/.
bench-scale: setup
	scripts/bench.sh -suite scale $(ARGS)

# Fan-out at saturation (1000 WebSocket clients) with connection-state
# recovery on and off, five rounds each, taking turns; writes bench/recovery/.
bench-recovery: setup
	scripts/bench.sh -servers go,go-norecovery -run '^ws-sat-1000$$' -rounds 5 -out bench/recovery $(ARGS)

# The same on three nodes and redis-server, the Streams broker against the
# pub/sub broker; writes bench/cluster/.
bench-cluster: setup
	scripts/bench.sh -servers go3-streams,go3-pubsub -run '^ws-sat-1000$$' -rounds 5 -out bench/cluster $(ARGS)

# Each decoder's fuzz target in turn, FUZZTIME each, one worker.
FUZZTIME ?= 60s
FUZZ_TARGETS := \
	internal/eioparser:FuzzDecodePayloadV4 \
	internal/eioparser:FuzzDecodePayloadV3Text \
	internal/eioparser:FuzzDecodePayloadV3Binary \
	internal/wsconn:FuzzFrameReader \
	internal/wsconn:FuzzDeflateFrameReader \
	internal/wsconn:FuzzFeed \
	socketio:FuzzDecodeText \
	socketio:FuzzDecoder \
	redisbroker:FuzzDecodeMessage

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "== $$fn ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -parallel 1 ./$$pkg/; \
	done

# 2,000 clients for SOAK_DURATION (default 10m) over both protocol revisions
# and both transports, with churn; fails unless RSS and goroutines stay flat
# and no acknowledged line is lost. Not part of make test.
soak: bundle
	scripts/soak.sh $(ARGS)

# The same on three nodes and redis-server (Streams broker), restarting one
# node in the middle: its clients must recover, the others notice nothing.
soak-cluster: bundle
	SOAK_NODES=3 scripts/soak.sh $(ARGS)

clean:
	rm -rf bin $(addprefix $(BUNDLE)/,$(BUNDLE_FILES)) $(ADMINUI)
