// invoice-renderer's entry point. 3.0.0 serves the API, /healthz and /metrics on one listener,
// LISTEN_ADDR (":9090" by default): 2.x listened on :8080 and kept /metrics on a second port.
package main

import (
	"log"
	"net/http"
	"os"

	"registry.acme.dev/billing/invoice-renderer/internal/render"
)

func main() {
	addr := os.Getenv("LISTEN_ADDR")
	if addr == "" {
		addr = ":9090"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/invoices/render", render.Handle)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
	mux.Handle("/metrics", render.Metrics())
	log.Printf("invoice-renderer %s listening on %s", render.Version, addr)
	log.Fatal(http.ListenAndServe(addr, mux))
}
