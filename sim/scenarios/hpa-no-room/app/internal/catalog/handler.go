package catalog

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Handler answers GET /products?category=...&page=...: it filters the in-memory catalogue,
// prices each product for the caller's market and renders the page as JSON.
type Handler struct {
	Store  *Store
	Prices *PriceBook
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	category := r.URL.Query().Get("category")
	page, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || page < 1 {
		page = 1
	}
	market := r.Header.Get("X-Market")
	products := h.Store.InCategory(category)
	out := make([]Priced, 0, 48)
	for i := (page - 1) * 48; i < len(products) && len(out) < 48; i++ {
		// Each price is computed from the rules of the market for every request: promotions
		// add rules, so a campaign makes every page dearer to render.
		out = append(out, h.Prices.Price(products[i], market))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}
