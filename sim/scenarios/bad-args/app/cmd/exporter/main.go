// ledger-exporter: scrapes the ledger's reconciliation tables and serves them as Prometheus
// metrics. Flags (1.9): -listen, -scrape-interval, -config, -log-level. 2.0 renames -listen to
// -metrics.listen-address.
package main

import (
	"flag"
	"log"
	"net/http"
	"time"
)

func main() {
	listen := flag.String("listen", ":9102", "address to serve /metrics on")
	interval := flag.Duration("scrape-interval", 30*time.Second, "how often to read the ledger")
	config := flag.String("config", "/etc/exporter/config.yaml", "ledger connection settings")
	level := flag.String("log-level", "info", "debug, info, warn or error")
	flag.Parse()
	log.Printf("ledger-exporter 1.9.4 config=%s interval=%s level=%s", *config, *interval, *level)
	log.Fatal(http.ListenAndServe(*listen, nil))
}
