package search

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strings"
)

// Handler answers GET /search?q=...: it scores every candidate document against the query
// terms and returns the best 20.
type Handler struct {
	Index *Index
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if q == "" {
		http.Error(w, "missing q", http.StatusBadRequest)
		return
	}
	terms := strings.Fields(strings.ToLower(q))
	candidates := h.Index.Candidates(terms)
	hits := make([]Hit, 0, len(candidates))
	for _, doc := range candidates {
		score := 0.0
		for _, t := range terms {
			// One pattern per term and document: compiled on every request.
			re := regexp.MustCompile(`\b` + regexp.QuoteMeta(t) + `\w*`)
			score += float64(len(re.FindAllStringIndex(doc.Text, -1))) * doc.Boost
		}
		if score > 0 {
			hits = append(hits, Hit{ID: doc.ID, Score: score})
		}
	}
	sort.Slice(hits, func(i, j int) bool { return hits[i].Score > hits[j].Score })
	if len(hits) > 20 {
		hits = hits[:20]
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(hits)
}
