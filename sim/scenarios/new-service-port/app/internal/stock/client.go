// Package stock talks to the inventory service; storefront checks it once at start-up and
// exits when it cannot reach it.
package stock

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"
)

func Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, os.Getenv("INVENTORY_URL")+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("stock backend: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("stock backend: %s", resp.Status)
	}
	return nil
}
