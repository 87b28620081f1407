package ledger

import (
	"encoding/json"
	"net/http"
)

// PostEntries decodes a whole batch of entries before writing any: memory per request in flight
// grows with the batch and with traffic.
func PostEntries(w http.ResponseWriter, r *http.Request) {
	var batch []map[string]any
	if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
