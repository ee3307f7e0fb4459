// Command ferretdb runs an embedded FerretDB v1 (a MongoDB-compatible server) for local development
// and tests on machines without MongoDB.
//
// It embeds github.com/FerretDB/FerretDB/ferretdb rather than building FerretDB's own main package:
// `go install` of that package panics on its build-version check, embedding does not.
//
// Usage:
//
//	ferretdb -listen 127.0.0.1:27017 -postgresql-url postgres://127.0.0.1:5432/resultity_ferretdb
//	ferretdb -listen 127.0.0.1:27017 -sqlite-url file:./.data/ferretdb/
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	pgURL := flag.String("postgresql-url", "", "PostgreSQL backend URL (the database must exist)")
	sqliteURL := flag.String("sqlite-url", "", "SQLite backend directory URI, e.g. file:./data/")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fail(fmt.Errorf("bad -log-level: %w", err))
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	cfg := &ferretdb.Config{Listener: ferretdb.ListenerConfig{TCP: *listen}, Logger: logger}
	switch {
	case *pgURL != "" && *sqliteURL != "":
		fail(fmt.Errorf("give -postgresql-url or -sqlite-url, not both"))
	case *pgURL != "":
		cfg.Handler, cfg.PostgreSQLURL = "postgresql", *pgURL
	case *sqliteURL != "":
		cfg.Handler, cfg.SQLiteURL = "sqlite", *sqliteURL
	default:
		fail(fmt.Errorf("one of -postgresql-url or -sqlite-url is required"))
	}

	f, err := ferretdb.New(cfg)
	if err != nil {
		fail(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	logger.Warn("ferretdb listening", "addr", *listen, "backend", cfg.Handler)
	if err := f.Run(ctx); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "ferretdb:", err)
	os.Exit(2)
}
