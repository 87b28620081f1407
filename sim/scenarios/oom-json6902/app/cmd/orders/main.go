package main

import (
	"encoding/json"
	"net/http"
)

type order struct {
	ID    string   `json:"id"`
	Lines []string `json:"lines"`
}

// Each request decodes the whole cart and keeps it until the response is written: memory per
// request in flight grows with traffic, not with time.
func handleOrders(w http.ResponseWriter, r *http.Request) {
	var o order
	if err := json.NewDecoder(r.Body).Decode(&o); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	_ = json.NewEncoder(w).Encode(o)
}

func main() {
	http.HandleFunc("/orders", handleOrders)
	_ = http.ListenAndServe(":8080", nil)
}
