package main

import (
	"log"
	"net/http"
)

// checkout serves the basket's payment step; its memory follows the requests in flight.
func main() {
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	http.HandleFunc("/api/checkout", handleCheckout)
	log.Println("checkout listening on :8080")
	log.Fatal(http.ListenAndServe(":8080", nil))
}

func handleCheckout(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusAccepted)
}
