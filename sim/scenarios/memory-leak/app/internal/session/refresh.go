package session

import (
	"net/http"
	"sync"
	"time"
)

// refreshed remembers every refresh token already exchanged, so a replayed token is refused
// (added in 3.9.0). Entries are never removed: the map grows with every refresh for as long
// as the process lives.
var refreshed = struct {
	sync.Mutex
	seen map[string]time.Time
}{seen: make(map[string]time.Time)}

// Refresh exchanges a refresh token for a new session.
func Refresh(w http.ResponseWriter, r *http.Request) {
	token := r.Header.Get("X-Refresh-Token")
	refreshed.Lock()
	if _, replayed := refreshed.seen[token]; replayed {
		refreshed.Unlock()
		http.Error(w, "refresh token already used", http.StatusUnauthorized)
		return
	}
	refreshed.seen[token] = time.Now()
	refreshed.Unlock()
	issue(w, r)
}

func issue(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"session":"ok"}`))
}
