// Command web is Roadlab's small CPU-bound web app and its own HTTP client.
//
//	web serve            listen on $PORT (8080); GET / answers, GET /work burns CPU,
//	                     GET /fail answers 500, GET /metrics exposes the request metrics
//	web get URL          print the body of URL; exit 1 on a non-2xx answer
//	web load URL N C     send N requests with C workers; print a summary
//	web sleep SECONDS    sleep, then exit 0 (a Job that simply completes)
//
// One static binary so the image is FROM scratch: nothing to pull, nothing to patch.
package main

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "serve":
		serve()
	case "get":
		if len(os.Args) != 3 {
			usage()
		}
		os.Exit(get(os.Args[2]))
	case "load":
		if len(os.Args) != 5 {
			usage()
		}
		n, _ := strconv.Atoi(os.Args[3])
		c, _ := strconv.Atoi(os.Args[4])
		load(os.Args[2], n, c)
	case "sleep":
		if len(os.Args) != 3 {
			usage()
		}
		seconds, err := strconv.Atoi(os.Args[2])
		if err != nil {
			usage()
		}
		time.Sleep(time.Duration(seconds) * time.Second)
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: web serve | web get URL | web load URL N CONCURRENCY | web sleep SECONDS")
	os.Exit(2)
}

func serve() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	host, _ := os.Hostname()
	version := os.Getenv("VERSION")
	if version == "" {
		version = "v1"
	}
	mux := http.NewServeMux()
	metrics := newRequestMetrics()
	handle := func(pattern, handler string, h http.HandlerFunc) { mux.Handle(pattern, metrics.instrument(handler, h)) }
	handle("/", "root", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "hello from %s (%s)\n", host, version)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	// /fail answers 500: errors on demand, for the observability lab's error-rate alert.
	handle("/fail", "fail", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "failed on purpose", http.StatusInternalServerError)
	})
	mux.Handle("/metrics", promhttp.HandlerFor(metrics.registry, promhttp.HandlerOpts{}))
	// /drip?seconds=N answers one byte a second for N seconds: a server that is slow but
	// never silent, so only an overall deadline (not a socket timeout) ends a client.
	handle("/drip", "drip", func(w http.ResponseWriter, r *http.Request) {
		seconds, err := strconv.Atoi(r.URL.Query().Get("seconds"))
		if err != nil || seconds <= 0 || seconds > 3600 {
			seconds = 60
		}
		flusher, _ := w.(http.Flusher)
		for i := 0; i < seconds; i++ {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Second):
			}
			fmt.Fprint(w, ".")
			if flusher != nil {
				flusher.Flush()
			}
		}
		fmt.Fprintln(w, "done")
	})
	// /work?ms=N hashes for about N milliseconds of CPU: load that an HPA can see.
	handle("/work", "work", func(w http.ResponseWriter, r *http.Request) {
		ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
		if err != nil || ms <= 0 || ms > 5000 {
			ms = 50
		}
		deadline := time.Now().Add(time.Duration(ms) * time.Millisecond)
		sum := sha256.Sum256([]byte(host))
		rounds := 0
		for time.Now().Before(deadline) {
			for i := 0; i < 1000; i++ {
				sum = sha256.Sum256(sum[:])
			}
			rounds++
		}
		fmt.Fprintf(w, "worked %d ms (%d rounds) on %s (%s)\n", ms, rounds, host, version)
	})
	srv := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	fmt.Printf("listening on :%s\n", port)
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// requestMetrics are the app's Prometheus metrics: requests by handler and status code, and
// their latency. The handler label takes a fixed name per route (never the raw path), so a
// client cannot grow the series without bound.
type requestMetrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newRequestMetrics() *requestMetrics {
	m := &requestMetrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "web_requests_total",
			Help: "HTTP requests answered, by handler and status code.",
		}, []string{"handler", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "web_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by handler.",
			Buckets: prometheus.DefBuckets,
		}, []string{"handler"}),
	}
	m.registry.MustRegister(m.requests, m.duration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *requestMetrics) instrument(handler string, h http.HandlerFunc) http.Handler {
	labels := prometheus.Labels{"handler": handler}
	return promhttp.InstrumentHandlerDuration(m.duration.MustCurryWith(labels),
		promhttp.InstrumentHandlerCounter(m.requests.MustCurryWith(labels), h))
}

// In a pod, HTTPS is verified against the cluster CA, so `get` can reach the API server.
const clusterCA = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"

var client = newClient()

func newClient() *http.Client {
	c := &http.Client{Timeout: 10 * time.Second}
	if pem, err := os.ReadFile(clusterCA); err == nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		c.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	return c
}

func get(url string) int {
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	os.Stdout.Write(body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintf(os.Stderr, "HTTP %d\n", resp.StatusCode)
		return 1
	}
	return 0
}

func load(url string, n, c int) {
	var ok, failed atomic.Int64
	jobs := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < c; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				resp, err := client.Get(url)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode < 300 {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	fmt.Printf("requests=%d ok=%d failed=%d seconds=%.2f\n", n, ok.Load(), failed.Load(), time.Since(start).Seconds())
}
