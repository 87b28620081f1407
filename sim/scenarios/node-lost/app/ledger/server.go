package main

import (
	"log"
	"net/http"
)

// ledger-api records payments against accounts; it keeps no state of its own between requests.
func main() {
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	http.HandleFunc("/api/ledger", handleEntry)
	log.Println("ledger-api listening on :8080")
	log.Fatal(http.ListenAndServe(":8080", nil))
}

func handleEntry(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusCreated)
}
