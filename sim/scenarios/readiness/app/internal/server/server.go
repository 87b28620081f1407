// Package server wires inventory-api's HTTP routes: the stock API and the health endpoints the
// kubelet probes.
package server

import "net/http"

func Routes(stock http.Handler, db Pinger) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/stock/", stock)
	// Ready when the database answers; alive while the process serves.
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := db.Ping(r.Context()); err != nil {
			http.Error(w, "database unreachable", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	return mux
}
