// orders-api: accepts orders on /api/orders and queues them for fulfilment.
package main

import (
	"log/slog"
	"net/http"
	"os"
)

func mustEnv(name string) string {
	v, ok := os.LookupEnv(name)
	if !ok {
		slog.Error("missing required environment variable", "var", name)
		os.Exit(1)
	}
	return v
}

func main() {
	dbURL := mustEnv("DATABASE_URL")
	queue := mustEnv("ORDERS_QUEUE")
	store, err := openStore(dbURL)
	if err != nil {
		slog.Error("database", "err", err)
		os.Exit(1)
	}
	http.HandleFunc("/api/orders", ordersHandler(store, queue))
	slog.Info("listening", "addr", ":8080")
	_ = http.ListenAndServe(":8080", nil)
}
