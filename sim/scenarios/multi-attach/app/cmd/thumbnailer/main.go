package main

import (
	"log"
	"net/http"
	"os"
	"path/filepath"
)

func main() {
	dir := os.Getenv("CACHE_DIR")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Fatalf("cache dir %s: %v", dir, err)
	}
	http.HandleFunc("/thumbs/", func(w http.ResponseWriter, r *http.Request) {
		name := filepath.Base(r.URL.Path)
		path := filepath.Join(dir, name)
		if _, err := os.Stat(path); err != nil {
			if err := render(r.Context(), name, path); err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
		}
		http.ServeFile(w, r, path)
	})
	log.Printf("listening on :8000, cache %s", dir)
	log.Fatal(http.ListenAndServe(":8000", nil))
}
