package main

import (
	"log/slog"
	"net/http"
	"os"
	"time"
)

func main() {
	ttl, err := time.ParseDuration(os.Getenv("CART_TTL"))
	if err != nil {
		ttl = 24 * time.Hour
	}
	store := newStore(ttl)
	mux := http.NewServeMux()
	mux.HandleFunc("/cart", store.handle)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	slog.Info("listening", "addr", ":9090", "version", version)
	if err := http.ListenAndServe(":9090", mux); err != nil {
		slog.Error("serve", "err", err)
		os.Exit(1)
	}
}
