// Package store opens the orders database at start-up; checkout-api exits when it cannot.
package store

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

func Open(ctx context.Context) (*pgxpool.Pool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	url := fmt.Sprintf("postgres://checkout@%s:5432/orders", os.Getenv("ORDERS_DB_HOST"))
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		return nil, fmt.Errorf("failed to connect to orders-db: %w", err)
	}
	return pool, nil
}
