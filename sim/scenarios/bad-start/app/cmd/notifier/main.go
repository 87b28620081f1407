// notifier: drains the notifications queue and sends e-mail and push messages in batches.
// The image (Dockerfile: COPY --from=build /out/notifier /app/notifier; ENTRYPOINT ["/app/notifier"]).
package main

import (
	"flag"
	"log/slog"
)

func main() {
	listen := flag.String("listen", ":8080", "address for health and metrics")
	queue := flag.String("queue", "notifications", "queue to drain")
	batch := flag.Int("batch", 20, "messages per send")
	flag.Parse()
	slog.Info("starting", "listen", *listen, "queue", *queue, "batch", *batch)
	run(*listen, *queue, *batch)
}
