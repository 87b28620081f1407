package main

import (
	"log/slog"
	"net/http"
	"os"
	"strconv"
)

func main() {
	workers, err := strconv.Atoi(os.Getenv("PDF_WORKERS"))
	if err != nil || workers < 1 {
		workers = 2
	}
	// Rendered invoices are cached under /var/cache/invoices, which the image creates as root.
	renderer := newRenderer("/var/cache/invoices", workers)
	mux := http.NewServeMux()
	mux.HandleFunc("/invoices", renderer.handle)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	slog.Info("listening", "addr", ":8080", "version", version)
	if err := http.ListenAndServe(":8080", mux); err != nil {
		slog.Error("serve", "err", err)
		os.Exit(1)
	}
}
