// go_peer: the demo-server contract (../../../shared/demo-server.md) for
// GET /, POST /echo, GET /sleep and GET /healthz, on Go's net/http, for
// bench/run.sh. Standard library only.
//
//	go_peer [--host ADDR] [--port N] [--grace-ms N] [--drain-delay-ms N]
//
// SIGTERM/SIGINT: /healthz answers 503 for --drain-delay-ms while the
// server keeps serving (the usual Kubernetes-aware Go pattern), then
// srv.Shutdown(ctx with --grace-ms); exit 0 if it drained, 3 if the grace
// ran out (then srv.Close()). A second signal closes at once (exit 3).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

var hello = []byte("hello, world\n")

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	http.Error(w, "405 Method Not Allowed", http.StatusMethodNotAllowed)
}

func main() {
	host := flag.String("host", "127.0.0.1", "address to bind")
	port := flag.Int("port", 8080, "port (0 picks a free one)")
	graceMs := flag.Int("grace-ms", 10000, "shutdown grace period")
	drainMs := flag.Int("drain-delay-ms", 0, "keep serving this long after SIGTERM, /healthz 503")
	flag.Int("max-connections", 0, "accepted for the contract; ignored")
	flag.Parse()

	var draining atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET, HEAD")
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "13")
		if r.Method == http.MethodGet {
			w.Write(hello)
		}
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			methodNotAllowed(w, "POST")
			return
		}
		var body []byte
		var err error
		if r.ContentLength >= 0 && r.ContentLength <= 64<<20 {
			body = make([]byte, r.ContentLength)
			_, err = io.ReadFull(r.Body, body)
		} else {
			body, err = io.ReadAll(io.LimitReader(r.Body, 64<<20))
		}
		if err != nil {
			http.Error(w, "400 Bad Request", http.StatusBadRequest)
			return
		}
		ct := r.Header.Get("Content-Type")
		if ct == "" {
			ct = "application/octet-stream"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
	mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET, HEAD")
			return
		}
		ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
		if err != nil || ms < 0 || ms > 60000 {
			http.Error(w, "ms must be an integer in 0..60000", http.StatusBadRequest)
			return
		}
		time.Sleep(time.Duration(ms) * time.Millisecond) // Shutdown does not cut it short
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "slept %d ms\n", ms)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if draining.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "draining\n")
			return
		}
		io.WriteString(w, "ok\n")
	})

	addr := net.JoinHostPort(*host, strconv.Itoa(*port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go_peer: listen %s: %v\n", addr, err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}
	bound := ln.Addr().(*net.TCPAddr)
	fmt.Printf("listening on http://%s\n", net.JoinHostPort(*host, strconv.Itoa(bound.Port)))

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err := <-serveErr:
		fmt.Fprintf(os.Stderr, "go_peer: serve: %v\n", err)
		os.Exit(1)
	case <-sigs:
	}
	start := time.Now()
	draining.Store(true)
	forced := make(chan struct{})
	go func() { <-sigs; close(forced); srv.Close() }()
	select {
	case <-time.After(time.Duration(*drainMs) * time.Millisecond):
	case <-forced:
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(*graceMs)*time.Millisecond)
	defer cancel()
	err = srv.Shutdown(ctx)
	drained := err == nil
	select {
	case <-forced:
		drained = false
	default:
	}
	if !drained {
		srv.Close()
	}
	fmt.Fprintf(os.Stderr, "go_peer: shutdown drained=%v elapsed_ms=%d\n", drained, time.Since(start).Milliseconds())
	if !drained {
		os.Exit(3)
	}
}
