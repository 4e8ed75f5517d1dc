package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// tableAccept asks the API server for its Table rendering: the CRD's printer columns,
// the very columns of `kubectl get oauthclients -o wide`.
const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io"

// waitReady shows the OAuthClients until every sample is Ready with its client URI
// verification settled, or --timeout passes. On a terminal the table is redrawn in
// place; otherwise it is printed each time it changes.
func (d *demo) waitReady(ctx context.Context) error {
	httpClient, err := rest.HTTPClientFor(d.cfg)
	if err != nil {
		return err
	}
	url := strings.TrimSuffix(d.cfg.Host, "/") + "/apis/" + v1alpha1.GroupVersion.Group + "/" + v1alpha1.GroupVersion.Version +
		"/namespaces/" + d.opts.namespace + "/oauthclients"
	tty := isTerminal(d.out)
	d.printf("\n")
	var shown string
	var lines int
	deadline := time.Now().Add(d.opts.timeout)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		table, tableErr := fetchTable(ctx, httpClient, url)
		if tableErr == nil {
			text := renderTable(table)
			// Without a terminal, AGE alone changing is not worth a new table.
			if tty || withoutAge(text) != withoutAge(shown) {
				if tty && lines > 0 {
					d.printf("\x1b[%dA\x1b[J", lines)
				} else if shown != "" {
					d.printf("\n")
				}
				d.printf("%s", text)
				shown, lines = text, screenLines(d.out, text)
			}
		}
		pending, err := d.pending(ctx)
		switch {
		case err == nil && len(pending) == 0:
			d.printf("\nAll %d OAuthClients are Ready after %s.\n", len(d.samples), since(d.start))
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case time.Now().After(deadline):
			return fmt.Errorf("not every sample was Ready within %s:\n  %s\noperator log (%s):\n%s",
				d.opts.timeout, strings.Join(pending, "\n  "), d.rel(d.logPath), tail(d.logPath, 15))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.operatorDone:
			return d.operatorExited(" before the samples were Ready")
		case <-tick.C:
		}
	}
}

// pending describes the samples that are not done yet: not Ready for their current
// generation, or with a client URI verification still under way.
func (d *demo) pending(ctx context.Context) ([]string, error) {
	list := &v1alpha1.OAuthClientList{}
	if err := d.k8s.List(ctx, list, client.InNamespace(d.opts.namespace)); err != nil {
		return nil, err
	}
	byName := map[string]*v1alpha1.OAuthClient{}
	for i := range list.Items {
		byName[list.Items[i].Name] = &list.Items[i]
	}
	var pending []string
	for _, name := range d.samples {
		o := byName[name]
		if o == nil {
			pending = append(pending, name+": not found")
			continue
		}
		ready := meta.FindStatusCondition(o.Status.Conditions, v1alpha1.ConditionReady)
		switch {
		case ready == nil:
			pending = append(pending, name+": no Ready condition yet")
		case ready.Status != metav1.ConditionTrue || o.Status.ObservedGeneration != o.Generation:
			pending = append(pending, fmt.Sprintf("%s: Ready=%s %s: %s", name, ready.Status, ready.Reason, ready.Message))
		case o.Status.ClientURIVerification != nil &&
			(o.Status.ClientURIVerification.Status == cfapi.VerificationPending || o.Status.ClientURIVerification.Status == cfapi.VerificationInProgress):
			pending = append(pending, fmt.Sprintf("%s: Ready, client URI verification %s", name, o.Status.ClientURIVerification.Status))
		}
	}
	return pending, nil
}

func fetchTable(ctx context.Context, c *http.Client, url string) (*metav1.Table, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"?includeObject=None", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", tableAccept)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("listing OAuthClients: HTTP %d", resp.StatusCode)
	}
	table := &metav1.Table{}
	if err := json.Unmarshal(body, table); err != nil {
		return nil, err
	}
	if len(table.ColumnDefinitions) == 0 {
		return nil, errors.New("the API server returned no table columns")
	}
	return table, nil
}

// renderTable prints a Table like kubectl -o wide: every column, upper-case headers,
// empty cells for missing values.
func renderTable(t *metav1.Table) string {
	var buf bytes.Buffer
	w := tabwriter.NewWriter(&buf, 6, 4, 3, ' ', 0)
	headers := make([]string, len(t.ColumnDefinitions))
	for i, c := range t.ColumnDefinitions {
		headers[i] = strings.ToUpper(c.Name)
	}
	_, _ = fmt.Fprintln(w, strings.Join(headers, "\t"))
	if len(t.Rows) == 0 {
		_ = w.Flush()
		return buf.String() + "(no OAuthClients yet)\n"
	}
	for _, row := range t.Rows {
		cells := make([]string, len(t.ColumnDefinitions))
		for i := range cells {
			if i < len(row.Cells) && row.Cells[i] != nil {
				cells[i] = fmt.Sprint(row.Cells[i])
			}
		}
		_, _ = fmt.Fprintln(w, strings.Join(cells, "\t"))
	}
	_ = w.Flush()
	return buf.String()
}

// withoutAge drops the AGE column's values, to compare two renderings.
func withoutAge(text string) string {
	lines := strings.Split(text, "\n")
	if len(lines) == 0 {
		return text
	}
	start := strings.Index(lines[0], "AGE")
	if start < 0 {
		return text
	}
	for i, l := range lines {
		if len(l) > start {
			end := strings.IndexByte(l[start:], ' ')
			if end < 0 {
				lines[i] = l[:start]
			} else {
				lines[i] = l[:start] + l[start+end:]
			}
		}
	}
	return strings.Join(lines, "\n")
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// screenLines counts the terminal rows text takes, wrapped lines included, so that the
// redraw moves the cursor back to the table's first row.
func screenLines(w io.Writer, text string) int {
	width := 0
	if f, ok := w.(*os.File); ok {
		width, _, _ = term.GetSize(int(f.Fd()))
	}
	rows := 0
	for line := range strings.Lines(text) {
		n := len(strings.TrimRight(line, "\n"))
		if width <= 0 || n <= width {
			rows++
			continue
		}
		rows += (n + width - 1) / width
	}
	return rows
}
