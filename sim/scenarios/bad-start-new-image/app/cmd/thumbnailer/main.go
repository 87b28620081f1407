// thumbnailer: renders the thumbnails of uploaded images from the originals bucket.
// The image (Dockerfile): since 2.0.0 the binary is /usr/local/bin/thumbnailer, its ENTRYPOINT;
// 1.x images held it at /app/thumbnailer.
package main

import (
	"flag"
	"log/slog"
)

func main() {
	listen := flag.String("listen", ":8080", "address for health, metrics and render requests")
	bucket := flag.String("bucket", "media-originals", "bucket of the originals")
	workers := flag.Int("workers", 4, "concurrent renders")
	flag.Parse()
	slog.Info("starting", "listen", *listen, "bucket", *bucket, "workers", *workers)
	serve(*listen, *bucket, *workers)
}
