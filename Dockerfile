# syntax=docker/dockerfile:1
# The chat server image: docker build -t siogo-chatserver .
# docker-compose.yml builds it for the multi-instance demo.

# 1. The socket.io client bundle that the server embeds and serves at
#    /socket.io/socket.io.js, and the Admin UI dashboard it serves at /admin/
#    with -admin, from the pinned npm packages.
FROM node:20-alpine AS bundle
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
RUN mkdir /bundle && cp node_modules/socket.io-client/dist/socket.io.js \
        node_modules/socket.io-client/dist/socket.io.js.map \
        node_modules/socket.io-client/dist/socket.io.min.js \
        node_modules/socket.io-client/dist/socket.io.min.js.map /bundle/
COPY scripts/adminui.sh scripts/
RUN scripts/adminui.sh /adminui

# 2. A static binary: no C library needed in the final image.
FROM golang:1.26-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
COPY --from=bundle /bundle/ internal/clientbundle/dist/
COPY --from=bundle /adminui/ internal/adminui/dist/ui/
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/chatserver ./cmd/chatserver

# 3. A small image running as an unprivileged user. Alpine rather than an
#    empty image so that health checks have wget.
FROM alpine:3.22
RUN adduser -D -H -u 10001 chat
COPY --from=build /out/chatserver /usr/local/bin/chatserver
USER 10001:10001
EXPOSE 3000
ENV CHAT_ADDR=:3000
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
    CMD wget -q -O /dev/null http://127.0.0.1:3000/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/chatserver"]
