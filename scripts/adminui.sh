#!/bin/sh
# Copies the Socket.IO Admin UI dashboard from the pinned npm packages into
# DEST, for internal/adminui to embed: the built dashboard of
# @socket.io/admin-ui (ui/dist, without source maps) and, under mdi/, the
# icon font it otherwise loads from a CDN (@mdi/font: its stylesheet and the
# woff2 and woff fonts).
#
#   scripts/adminui.sh DEST   (run from the repository root, after npm ci)
set -eu
dest=${1:?usage: scripts/adminui.sh DEST}
ui=node_modules/@socket.io/admin-ui/ui/dist
mdi=node_modules/@mdi/font
for f in "$ui/index.html" "$mdi/css/materialdesignicons.min.css"; do
	[ -f "$f" ] || { echo "adminui: $f is missing: run npm ci" >&2; exit 1; }
done
rm -rf "$dest"
mkdir -p "$dest/mdi/css" "$dest/mdi/fonts"
cp -R "$ui/." "$dest/"
find "$dest" -name '*.map' -exec rm -f {} +
cp "$mdi/css/materialdesignicons.min.css" "$dest/mdi/css/"
cp "$mdi/fonts/materialdesignicons-webfont.woff2" "$mdi/fonts/materialdesignicons-webfont.woff" "$dest/mdi/fonts/"
