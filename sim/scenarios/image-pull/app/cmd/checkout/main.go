// checkout-web: renders the checkout page on /checkout and hands the cart to payments.
package main

import (
	"log/slog"
	"net/http"
	"os"
)

func main() {
	payments := os.Getenv("PAYMENTS_URL")
	if payments == "" {
		payments = "http://payment-service.production:8080"
	}
	http.HandleFunc("/checkout", checkoutHandler(payments))
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	slog.Info("listening", "addr", ":8080", "version", version)
	_ = http.ListenAndServe(":8080", nil)
}

var version = "dev"

func checkoutHandler(payments string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<form method=post action=" + payments + "/api/checkout>…</form>"))
	}
}
