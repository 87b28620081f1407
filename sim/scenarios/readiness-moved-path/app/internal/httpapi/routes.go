// Package httpapi wires settlement-api's HTTP routes: the settlement API and the health
// endpoints the kubelet and the status page's uptime check ask.
package httpapi

import "net/http"

func Routes(settle http.Handler, db Pinger) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/settlements/", settle)
	// Ready when the ledger database answers. 4.1 introduced /readyz beside the old /healthz;
	// 4.2 removed the deprecated /healthz.
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := db.Ping(r.Context()); err != nil {
			http.Error(w, "ledger database unreachable", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	// Alive while the process serves.
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	return mux
}
