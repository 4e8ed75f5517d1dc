package secretrender

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"text/template/parse"
)

// maxRandomNames bounds the stable random values one Secret keeps.
const maxRandomNames = 8

// usage is what a key's template refers to.
type usage struct {
	clientSecret bool
	randoms      []string
}

// variables are the names a template may use after a dot: the fields of Values.
var variables = func() []string {
	t := reflect.TypeFor[Values]()
	out := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		out = append(out, t.Field(i).Name)
	}
	return out
}()

// Variables lists the template variables, for documentation and messages.
func Variables() []string { return slices.Clone(variables) }

// check walks a parsed template and refuses what the language of secret templates
// leaves out (see the package comment), and unknown variables wherever the dot is
// still the Values (outside range and with), including in branches a render does not
// take. It reports whether the template uses .ClientSecret and which stable random
// values it names.
func check(root *parse.ListNode) (usage, error) {
	c := &checker{dotIsValues: true}
	c.list(root)
	return c.use, c.err
}

type checker struct {
	use         usage
	err         error
	dotIsValues bool
	inRange     bool
}

func (c *checker) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf(format, args...)
	}
}

func (c *checker) list(l *parse.ListNode) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		c.node(n)
	}
}

func (c *checker) node(n parse.Node) {
	switch n := n.(type) {
	case *parse.ActionNode:
		c.pipe(n.Pipe)
	case *parse.IfNode:
		c.pipe(n.Pipe)
		c.list(n.List)
		c.list(n.ElseList)
	case *parse.WithNode:
		c.pipe(n.Pipe)
		c.body(n.List, c.inRange)
		c.list(n.ElseList)
	case *parse.RangeNode:
		c.rangeNode(n)
	case *parse.TemplateNode:
		c.fail("define, block and template are not supported")
	}
}

// body walks a block whose dot is no longer the Values.
func (c *checker) body(l *parse.ListNode, inRange bool) {
	saved, savedRange := c.dotIsValues, c.inRange
	c.dotIsValues, c.inRange = false, inRange
	c.list(l)
	c.dotIsValues, c.inRange = saved, savedRange
}

// rangeNode allows range only over .Scopes or .RedirectURIs, once: every loop is then
// bounded by the CRD's limits on those lists, and no loop multiplies another.
func (c *checker) rangeNode(n *parse.RangeNode) {
	if c.inRange {
		c.fail("range inside range is not supported")
		return
	}
	if !rangesOverList(n.Pipe) {
		c.fail("range is allowed only over .Scopes or .RedirectURIs")
		return
	}
	c.pipe(n.Pipe)
	c.body(n.List, true)
	c.list(n.ElseList)
}

func rangesOverList(p *parse.PipeNode) bool {
	if p == nil || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	var idents []string
	switch a := p.Cmds[0].Args[0].(type) {
	case *parse.FieldNode:
		idents = a.Ident
	case *parse.VariableNode:
		if len(a.Ident) < 2 || a.Ident[0] != "$" {
			return false
		}
		idents = a.Ident[1:]
	}
	return len(idents) == 1 && (idents[0] == "Scopes" || idents[0] == "RedirectURIs")
}

func (c *checker) pipe(p *parse.PipeNode) {
	if p == nil {
		return
	}
	for _, cmd := range p.Cmds {
		c.command(cmd)
	}
}

func (c *checker) command(cmd *parse.CommandNode) {
	for i, arg := range cmd.Args {
		if id, ok := arg.(*parse.IdentifierNode); ok && id.Ident == "stableRandom" {
			c.stableRandom(cmd, i)
			continue
		}
		c.arg(arg)
	}
}

// stableRandom requires a literal name: the name becomes part of a Secret key, so it
// must never come from a value.
func (c *checker) stableRandom(cmd *parse.CommandNode, i int) {
	if i != 0 || len(cmd.Args) != 2 {
		c.fail(`stableRandom takes one literal name, e.g. {{ stableRandom "cookie" }}`)
		return
	}
	name, ok := cmd.Args[1].(*parse.StringNode)
	if !ok {
		c.fail(`stableRandom takes one literal name, e.g. {{ stableRandom "cookie" }}`)
		return
	}
	if !RandomNamePattern.MatchString(name.Text) {
		c.fail("stableRandom name %q must be lowercase letters, digits and '-', at most 63", name.Text)
		return
	}
	if !slices.Contains(c.use.randoms, name.Text) {
		c.use.randoms = append(c.use.randoms, name.Text)
	}
}

func (c *checker) arg(n parse.Node) {
	switch n := n.(type) {
	case *parse.FieldNode:
		c.field(n.Ident, c.dotIsValues)
	case *parse.VariableNode:
		if len(n.Ident) > 1 && n.Ident[0] == "$" {
			c.field(n.Ident[1:], true)
		}
	case *parse.ChainNode:
		c.arg(n.Node)
	case *parse.PipeNode:
		c.pipe(n)
	}
}

// field checks a chain of field names read from the Values (when known to be) and
// notes a use of .ClientSecret anywhere.
func (c *checker) field(idents []string, onValues bool) {
	if len(idents) == 0 {
		return
	}
	if idents[0] == "ClientSecret" {
		c.use.clientSecret = true
	}
	if onValues && !slices.Contains(variables, idents[0]) {
		c.fail("unknown variable .%s; the variables are .%s", idents[0], strings.Join(variables, ", ."))
	}
}
