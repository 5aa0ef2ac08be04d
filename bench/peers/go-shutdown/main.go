// go_shutdown_lag: bench/shutdown_lag.cpp for Go's http.Server.Shutdown,
// with the same client behaviour and the same schedule of sleeps.
//
//	go_shutdown_lag [--runs 100]
//
// Each run: a fresh http.Server on 127.0.0.1:0 with GET /sleep?ms=X
// (X = 5 + run*7919 % 246). A client goroutine sends one request on a raw
// TCP connection. When the handler has started, the main goroutine calls
// srv.Shutdown (10 s context). The client reads the whole response, takes
// t_end the moment it holds the last byte, and closes its connection at
// once. t_ret is taken when Shutdown returns. lag = t_ret - t_end.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"time"
)

// readResponse reads one response with a Content-Length body.
func readResponse(c net.Conn) (int, error) {
	buf := make([]byte, 0, 4096)
	tmp := make([]byte, 4096)
	headEnd, cl := -1, -1
	status := 0
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if headEnd >= 0 && cl >= 0 && len(buf) >= headEnd+cl {
			return status, nil
		}
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if headEnd < 0 {
			if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
				headEnd = i + 4
				status, _ = strconv.Atoi(string(buf[9:12]))
				for _, line := range bytes.Split(buf[:i], []byte("\r\n")) {
					if len(line) > 15 && bytes.EqualFold(line[:15], []byte("content-length:")) {
						cl, _ = strconv.Atoi(string(bytes.TrimSpace(line[15:])))
					}
				}
				continue
			}
		}
		if err != nil {
			return status, err
		}
	}
}

func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	i := int(p/100*float64(len(s)-1) + 0.5)
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}

func main() {
	runs := flag.Int("runs", 100, "number of shutdowns")
	flag.Parse()
	var lags []float64
	failures := 0
	for run := 0; run < *runs; run++ {
		ms := 5 + (run*7919)%246
		started := make(chan struct{}, 1)
		mux := http.NewServeMux()
		mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
			started <- struct{}{}
			v, _ := strconv.Atoi(r.URL.Query().Get("ms"))
			time.Sleep(time.Duration(v) * time.Millisecond)
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintf(w, "slept %d ms\n", v)
		})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		srv := &http.Server{Handler: mux}
		served := make(chan struct{})
		go func() { srv.Serve(ln); close(served) }()
		type result struct {
			end time.Time
			ok  bool
		}
		done := make(chan result, 1)
		go func() {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				done <- result{}
				return
			}
			fmt.Fprintf(c, "GET /sleep?ms=%d HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", ms)
			status, err := readResponse(c)
			end := time.Now()
			c.Close()
			done <- result{end, err == nil && status == 200}
		}()
		select {
		case <-started:
		case <-time.After(10 * time.Second):
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = srv.Shutdown(ctx)
		ret := time.Now()
		cancel()
		res := <-done
		<-served
		if !res.ok || err != nil {
			failures++
			continue
		}
		lags = append(lags, float64(ret.Sub(res.end).Nanoseconds())/1e6)
	}
	sum, mx := 0.0, 0.0
	for _, v := range lags {
		sum += v
		if v > mx {
			mx = v
		}
	}
	mean := 0.0
	if len(lags) > 0 {
		mean = sum / float64(len(lags))
	}
	fmt.Printf("shutdown_lag server=go runs=%d failures=%d p50_ms=%.3f p99_ms=%.3f max_ms=%.3f mean_ms=%.3f\n",
		len(lags), failures, pct(lags, 50), pct(lags, 99), mx, mean)
	if failures > 0 {
		os.Exit(1)
	}
}
