package main

import (
	"log"
	"net/http"
)

// orders-api takes orders from the storefront and queues them for fulfilment.
func main() {
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	http.HandleFunc("/api/orders", handleOrder)
	log.Println("orders-api listening on :8080")
	log.Fatal(http.ListenAndServe(":8080", nil))
}

func handleOrder(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusAccepted)
}
