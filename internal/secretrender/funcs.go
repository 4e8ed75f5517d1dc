package secretrender

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"text/template"
)

// The function set. Pipelines pass the piped value last, so every helper takes its
// subject last (as Helm and external-secrets do): {{ .Scopes | join " " }}.
//
// Each function reserves, before it builds anything, an upper bound of the bytes it
// produces from the render's fuel (funcBudget): a template cannot allocate its way out
// of memory, however it nests calls. The builtins that build strings (printf, print,
// println, html, js, urlquery) and the comparisons, whose cost grows with their
// operands, are replaced by budgeted versions with the same behaviour for strings,
// numbers and booleans.
func (r *renderer) funcs() template.FuncMap {
	return template.FuncMap{
		"lower": func(s string) (string, error) {
			return r.produce(3*len(s), func() string { return strings.ToLower(s) })
		},
		"upper": func(s string) (string, error) {
			return r.produce(3*len(s), func() string { return strings.ToUpper(s) })
		},
		"trim":       strings.TrimSpace,
		"trimPrefix": func(prefix, s string) string { return strings.TrimPrefix(s, prefix) },
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
		"contains":   func(sub, s string) bool { return strings.Contains(s, sub) },
		"hasPrefix":  func(prefix, s string) bool { return strings.HasPrefix(s, prefix) },
		"hasSuffix":  func(suffix, s string) bool { return strings.HasSuffix(s, suffix) },
		"default":    defaultString,
		"replace":    r.replace,
		"indent":     r.indent,
		"nindent":    func(n int, s string) (string, error) { return r.indentWith("\n", n, s) },
		"join":       r.join,
		"quote": func(s string) (string, error) {
			return r.produce(4*len(s)+2, func() string { return strconv.Quote(s) })
		},
		"squote":       func(s string) (string, error) { return r.produce(len(s)+2, func() string { return "'" + s + "'" }) },
		"b64enc":       r.b64enc,
		"toJson":       r.toJSON,
		"stableRandom": r.stableRandom,
		"printf":       r.printf,
		"print": func(args ...any) (string, error) {
			return r.produce(estimate(args...), func() string { return fmt.Sprint(args...) })
		},
		"println": func(args ...any) (string, error) {
			return r.produce(estimate(args...)+1, func() string { return fmt.Sprintln(args...) })
		},
		"html":     r.escaper(template.HTMLEscaper),
		"js":       r.escaper(template.JSEscaper),
		"urlquery": r.escaper(template.URLQueryEscaper),
		"eq":       r.eq,
		"ne":       func(a, b any) (bool, error) { same, err := r.eq(a, b); return !same, err },
		"lt":       func(a, b any) (bool, error) { c, err := r.compare(a, b); return c < 0, err },
		"le":       func(a, b any) (bool, error) { c, err := r.compare(a, b); return c <= 0, err },
		"gt":       func(a, b any) (bool, error) { c, err := r.compare(a, b); return c > 0, err },
		"ge":       func(a, b any) (bool, error) { c, err := r.compare(a, b); return c >= 0, err },
	}
}

var errNoFuel = fmt.Errorf("the template's functions produced more than %d bytes in all: simplify it", funcBudget)

// reserve takes n bytes of fuel, or fails.
func (r *renderer) reserve(n int) error {
	if n < 0 || n > r.fuel {
		r.fuel = 0
		return errNoFuel
	}
	r.fuel -= n
	return nil
}

// produce runs build once bound bytes of fuel are reserved.
func (r *renderer) produce(bound int, build func() string) (string, error) {
	if err := r.reserve(bound); err != nil {
		return "", err
	}
	return build(), nil
}

func defaultString(def, s string) string {
	if s == "" {
		return def
	}
	return s
}

// replace is strings.ReplaceAll(s, old, new), sized before it is built.
func (r *renderer) replace(old, new, s string) (string, error) {
	n := strings.Count(s, old) // the number of runes + 1 when old is ""
	return r.produce(len(s)+n*max(len(new)-len(old), 0), func() string { return strings.ReplaceAll(s, old, new) })
}

// maxIndent bounds indent and nindent: YAML nests a few levels, not thousands.
const maxIndent = 64

func (r *renderer) indent(n int, s string) (string, error) { return r.indentWith("", n, s) }

func (r *renderer) indentWith(lead string, n int, s string) (string, error) {
	if n < 0 || n > maxIndent {
		return "", fmt.Errorf("indent takes 0 to %d spaces, not %d", maxIndent, n)
	}
	lines := strings.Count(s, "\n") + 1
	pad := strings.Repeat(" ", n)
	return r.produce(len(lead)+len(s)+lines*n, func() string {
		return lead + pad + strings.ReplaceAll(s, "\n", "\n"+pad)
	})
}

// join joins a list (.Scopes, .RedirectURIs) with sep.
func (r *renderer) join(sep string, list []string) (string, error) {
	n := len(sep) * max(len(list)-1, 0)
	for _, s := range list {
		n += len(s)
	}
	return r.produce(n, func() string { return strings.Join(list, sep) })
}

func (r *renderer) b64enc(s string) (string, error) {
	return r.produce(base64.StdEncoding.EncodedLen(len(s)), func() string { return base64.StdEncoding.EncodeToString([]byte(s)) })
}

// toJson renders a string, a list, a number or a boolean as JSON.
func (r *renderer) toJSON(v any) (string, error) {
	if err := r.reserve(6*estimate(v) + 2); err != nil {
		return "", err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", errors.New("toJson takes a string, a list, a number or a boolean")
	}
	return string(b), nil
}

// printf is fmt.Sprintf without explicit argument indexes or large widths, so that its
// output is bounded by its format and its arguments (%x and %q at most sextuple them).
func (r *renderer) printf(format string, args ...any) (string, error) {
	if err := checkFormat(format); err != nil {
		return "", err
	}
	verbs := strings.Count(format, "%")
	return r.produce(len(format)+6*estimate(args...)+verbs*maxWidth, func() string { return fmt.Sprintf(format, args...) })
}

// maxWidth bounds a printf width or precision.
const maxWidth = 256

var formatDirective = regexp.MustCompile(`%[-+# 0]*([0-9*\[]*)(?:\.([0-9*\[]*))?`)

func checkFormat(format string) error {
	for _, m := range formatDirective.FindAllStringSubmatch(format, -1) {
		for _, part := range m[1:] {
			if strings.ContainsAny(part, "*[") {
				return errors.New("printf takes no * width and no explicit argument index")
			}
			if n, err := strconv.Atoi(part); part != "" && (err != nil || n > maxWidth) {
				return fmt.Errorf("printf takes widths and precisions up to %d", maxWidth)
			}
		}
	}
	return nil
}

// escaper budgets one of text/template's escapers (at most 6 bytes out per byte in).
func (r *renderer) escaper(escape func(...any) string) func(...any) (string, error) {
	return func(args ...any) (string, error) {
		return r.produce(6*estimate(args...), func() string { return escape(args...) })
	}
}

// estimate is an upper bound of the bytes fmt prints for the values a template can
// hold: strings, lists of strings, numbers, booleans, nil.
func estimate(args ...any) int {
	n := 0
	for _, a := range args {
		switch v := a.(type) {
		case string:
			n += len(v)
		case []string:
			n += 2
			for _, s := range v {
				n += len(s) + 3
			}
		default:
			n += 64
		}
	}
	return n
}

// stableRandom returns the value kept under name, generating it the first time: 32
// random bytes, base64url-encoded with padding (44 characters). oauth2-proxy decodes
// such a cookie secret to 32 bytes (AES-256).
func (r *renderer) stableRandom(name string) (string, error) {
	if v, ok := r.random[name]; ok {
		return string(v), nil
	}
	v, ok := r.in.Random[name]
	if !ok || !validRandom(v) {
		b := make([]byte, randomBytes)
		if _, err := io.ReadFull(r.in.Entropy, b); err != nil {
			return "", errors.New("stableRandom: no randomness available")
		}
		v = []byte(base64.URLEncoding.EncodeToString(b))
	}
	r.random[name] = v
	return string(v), nil
}

const randomBytes = 32

// validRandom reports whether a kept value is one stableRandom made: anything else (a
// user's edit of the Secret) is replaced.
func validRandom(v []byte) bool {
	b, err := base64.URLEncoding.DecodeString(string(v))
	return err == nil && len(b) == randomBytes
}

// RandomNamePattern is what a stableRandom name looks like: it becomes part of a
// Secret key.
var RandomNamePattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// eq reports a == b for strings, booleans and numbers, charging the comparison of
// strings to the fuel.
func (r *renderer) eq(a, b any) (bool, error) {
	c, err := r.compare(a, b)
	if errors.Is(err, errUnordered) {
		return a == b, nil
	}
	return c == 0, err
}

var errUnordered = errors.New("booleans have no order")

// compare orders two strings or two numbers.
func (r *renderer) compare(a, b any) (int, error) {
	if sa, ok := a.(string); ok {
		sb, ok := b.(string)
		if !ok {
			return 0, errors.New("incompatible types for comparison")
		}
		if err := r.reserve(min(len(sa), len(sb))); err != nil {
			return 0, err
		}
		return strings.Compare(sa, sb), nil
	}
	fa, okA := number(a)
	fb, okB := number(b)
	switch {
	case okA && okB:
		switch {
		case fa < fb:
			return -1, nil
		case fa > fb:
			return 1, nil
		}
		return 0, nil
	case reflect.TypeOf(a) == reflect.TypeOf(b) && reflect.TypeOf(a) != nil && reflect.TypeOf(a).Kind() == reflect.Bool:
		return 0, errUnordered
	}
	return 0, errors.New("incompatible types for comparison")
}

func number(v any) (float64, bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		return rv.Float(), true
	}
	return 0, false
}
