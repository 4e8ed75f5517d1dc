package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// sample is one line of the Prometheus text exposition format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

type samples []sample

func (ss samples) named(name string) []sample {
	var out []sample
	for _, s := range ss {
		if s.name == name {
			out = append(out, s)
		}
	}
	return out
}

// sum adds the samples of a metric whose labels include match.
func (ss samples) sum(name string, match map[string]string) float64 {
	total := 0.0
next:
	for _, s := range ss.named(name) {
		for k, v := range match {
			if s.labels[k] != v {
				continue next
			}
		}
		total += s.value
	}
	return total
}

// scrape fetches and parses a /metrics endpoint.
func scrape(ctx context.Context, hc *http.Client, url string) (samples, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseText(resp.Body)
}

// parseText parses the Prometheus text format well enough for counters and gauges:
// `name{k="v",...} value [timestamp]`; comments and malformed lines are skipped.
func parseText(r io.Reader) (samples, error) {
	var out samples
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if s, ok := parseLine(line); ok {
			out = append(out, s)
		}
	}
	return out, sc.Err()
}

func parseLine(line string) (sample, bool) {
	s := sample{labels: map[string]string{}}
	var rest string
	if i := strings.IndexByte(line, '{'); i >= 0 {
		j := strings.LastIndexByte(line, '}')
		if j < i {
			return s, false
		}
		s.name = line[:i]
		parseLabels(line[i+1:j], s.labels)
		rest = strings.TrimSpace(line[j+1:])
	} else {
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			return s, false
		}
		s.name, rest = name, strings.TrimSpace(value)
	}
	value, _, _ := strings.Cut(rest, " ")
	v, err := strconv.ParseFloat(value, 64)
	if err != nil {
		return s, false
	}
	s.value = v
	return s, true
}

// parseLabels reads k="v" pairs; values may contain escaped quotes and commas.
func parseLabels(in string, into map[string]string) {
	for in != "" {
		eq := strings.IndexByte(in, '=')
		if eq < 0 || eq+1 >= len(in) || in[eq+1] != '"' {
			return
		}
		key := strings.TrimSpace(in[:eq])
		var b strings.Builder
		i := eq + 2
		for ; i < len(in) && in[i] != '"'; i++ {
			if in[i] == '\\' && i+1 < len(in) {
				i++
			}
			b.WriteByte(in[i])
		}
		into[key] = b.String()
		in = strings.TrimLeft(in[min(i+1, len(in)):], ", ")
	}
}
