// Package config reads parcel-router's settings from its environment at start-up.
package config

import (
	"fmt"
	"net/url"
	"os"
)

type Config struct {
	Database *url.URL
	Region   string
}

// Load reads DATABASE_URL (a postgres:// URL without the password) and DATABASE_PASSWORD, which
// 3.4.0 reads on its own so that the secrets pipeline can rotate it alone.
func Load() (Config, error) {
	u, err := url.Parse(os.Getenv("DATABASE_URL"))
	if err != nil {
		return Config{}, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if p := os.Getenv("DATABASE_PASSWORD"); p != "" {
		u.User = url.UserPassword(u.User.Username(), p)
	}
	return Config{Database: u, Region: os.Getenv("ROUTER_REGION")}, nil
}
