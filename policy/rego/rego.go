package rego

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/resolver"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/refvalue"
)

// Package is the package a Rego policy must declare.
const Package = "tdproof.policy"

// Builtins that a policy may not call: they reach the network or the
// host, which an appraisal must never do.
var deniedBuiltins = []string{"http.send", "net.lookup_ip_addr", "opa.runtime", "rego.parse_module", "trace"}

var (
	refValuesRef  = ast.MustParseRef("data.tdproof.reference_values")
	reportDataRef = ast.MustParseRef("data.tdproof.expected_report_data")
)

type evaluator struct {
	pq rego.PreparedEvalQuery
}

// Parse compiles a policy of either format: FormatYAML with
// policy.ParseYAML, FormatRego with Compile. It is a policy.ParseFunc for
// policy.NewCache.
func Parse(format policy.Format, id, version string, src []byte) (*policy.Policy, error) {
	if format == policy.FormatRego {
		return Compile(id, version, src)
	}
	return policy.Parse(format, id, version, src)
}

// Compile compiles a Rego (v1 syntax) policy. The module must declare
// package tdproof.policy and define allow (a boolean; anything else
// denies). It may define violations, a set of objects {rule, claim,
// expected, actual} listing failed rules (any violation denies), and
// trust_vector, an object of AR4SI category names to integers.
//
// input is the claim set in its nested JSON form, without the unverified
// claims (claims.Matchable);
// data.tdproof.reference_values maps each reference-value name to the
// list of its accepted values valid at the appraisal time; and
// data.tdproof.expected_report_data is the hex report_data prefix set
// with policy.Policy.WithExpectedReportData, or "". time.now_ns() is the
// appraisal time. http.send, net.lookup_ip_addr, opa.runtime and trace are
// not available. The query is prepared once; a Policy is safe for
// concurrent use. Errors wrap policy.ErrInvalid.
func Compile(id, version string, src []byte) (*policy.Policy, error) {
	if len(src) > policy.MaxPolicySize {
		return nil, fmt.Errorf("%w: larger than %d bytes", policy.ErrInvalid, policy.MaxPolicySize)
	}
	mod, err := ast.ParseModuleWithOpts(id+".rego", string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", policy.ErrInvalid, err)
	}
	if got := strings.TrimPrefix(mod.Package.Path.String(), "data."); got != Package {
		return nil, fmt.Errorf("%w: package %s, want %s", policy.ErrInvalid, got, Package)
	}
	caps := ast.CapabilitiesForThisVersion()
	caps.Builtins = slices.DeleteFunc(slices.Clone(caps.Builtins), func(b *ast.Builtin) bool {
		return slices.Contains(deniedBuiltins, b.Name)
	})
	r := rego.New(
		rego.Query("data."+Package),
		rego.ParsedModule(mod),
		rego.Capabilities(caps),
		rego.StrictBuiltinErrors(true),
		rego.SetRegoVersion(ast.RegoV1),
	)
	// Preparing compiles; it runs no policy code and does no I/O.
	pq, err := r.PrepareForEval(context.Background())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", policy.ErrInvalid, err)
	}
	return policy.NewPolicy(id, version, policy.FormatRego, src, &evaluator{pq: pq})
}

// refValues resolves data.tdproof.reference_values lazily, once per
// evaluation.
type refValues struct {
	store refvalue.Store
	at    time.Time
}

func (r refValues) Eval(ctx context.Context, _ resolver.Input) (resolver.Result, error) {
	obj := ast.NewObject()
	if r.store != nil {
		all, err := r.store.List(ctx)
		if err != nil {
			return resolver.Result{}, fmt.Errorf("%w: reference values: %w", policy.ErrEvaluation, err)
		}
		byName := map[string][]refvalue.Value{}
		var names []string
		for _, v := range refvalue.ValidAt(all, r.at) {
			if _, ok := byName[v.Name]; !ok {
				names = append(names, v.Name)
			}
			byName[v.Name] = append(byName[v.Name], v)
		}
		for _, n := range names {
			acc := refvalue.Accepted(byName[n])
			terms := make([]*ast.Term, len(acc))
			for i, s := range acc {
				terms[i] = ast.StringTerm(s)
			}
			obj.Insert(ast.StringTerm(n), ast.ArrayTerm(terms...))
		}
	}
	return resolver.Result{Value: obj}, nil
}

type constant struct{ v ast.Value }

func (c constant) Eval(context.Context, resolver.Input) (resolver.Result, error) {
	return resolver.Result{Value: c.v}, nil
}

// Evaluate implements policy.Evaluator.
func (p *evaluator) Evaluate(ctx context.Context, c claims.Set, refs refvalue.Store, at time.Time, reportData string) (policy.Decision, error) {
	var d policy.Decision
	input, err := inputValue(c)
	if err != nil {
		return d, err
	}
	rs, err := p.pq.Eval(ctx,
		rego.EvalParsedInput(input),
		rego.EvalTime(at),
		rego.EvalResolver(refValuesRef, refValues{store: refs, at: at}),
		rego.EvalResolver(reportDataRef, constant{ast.String(reportData)}),
	)
	if err != nil {
		return d, fmt.Errorf("%w: %w", policy.ErrEvaluation, err)
	}
	var doc map[string]any
	if len(rs) == 1 && len(rs[0].Expressions) == 1 {
		doc, _ = rs[0].Expressions[0].Value.(map[string]any)
	}
	d.Allow, _ = doc["allow"].(bool)
	if vs, ok := doc["violations"].([]any); ok {
		for _, v := range vs {
			d.Failed = append(d.Failed, toViolation(v))
		}
		slices.SortFunc(d.Failed, func(x, y policy.Violation) int {
			return strings.Compare(x.Rule+"\x00"+x.Claim+"\x00"+x.Expected+"\x00"+x.Actual, y.Rule+"\x00"+y.Claim+"\x00"+y.Expected+"\x00"+y.Actual)
		})
	} else if doc["violations"] != nil {
		d.Failed = append(d.Failed, policy.Violation{Rule: "violations", Expected: "a set of objects", Actual: jsonString(doc["violations"])})
	}
	if tv, ok := doc["trust_vector"].(map[string]any); ok {
		d.TrustVector = &policy.TrustVector{}
		for k, v := range tv {
			n, ok := v.(json.Number)
			if !ok {
				continue
			}
			if i, err := n.Int64(); err == nil && i >= -128 && i <= 127 {
				d.TrustVector.Set(k, int8(i))
			}
		}
	}
	return d, nil
}

func toViolation(v any) policy.Violation {
	m, ok := v.(map[string]any)
	if !ok {
		return policy.Violation{Rule: jsonString(v)}
	}
	return policy.Violation{Rule: jsonString(m["rule"]), Claim: jsonString(m["claim"]), Expected: jsonString(m["expected"]), Actual: jsonString(m["actual"])}
}

func jsonString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// inputValue converts a claim set to an AST value without a JSON round
// trip.
func inputValue(c claims.Set) (ast.Value, error) {
	root := ast.NewObject()
	objs := map[string]ast.Object{"": root}
	var obj func(path string) ast.Object
	obj = func(path string) ast.Object {
		if o, ok := objs[path]; ok {
			return o
		}
		parent, key := "", path
		if i := strings.LastIndexByte(path, '.'); i >= 0 {
			parent, key = path[:i], path[i+1:]
		}
		po := obj(parent)
		if po == nil || po.Get(ast.StringTerm(key)) != nil {
			return nil // a claim is a prefix of another
		}
		o := ast.NewObject()
		po.Insert(ast.StringTerm(key), ast.NewTerm(o))
		objs[path] = o
		return o
	}
	for name, v := range c {
		if !claims.Matchable(name) {
			// Unverified claims are reported, never appraised: a Rego
			// policy cannot match them any more than a declarative one.
			continue
		}
		parent, key := "", name
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			parent, key = name[:i], name[i+1:]
		}
		var t *ast.Term
		switch v := v.(type) {
		case string:
			t = ast.StringTerm(v)
		case bool:
			t = ast.BooleanTerm(v)
		case int64:
			t = ast.IntNumberTerm(int(v))
		case int:
			t = ast.IntNumberTerm(v)
		case []string:
			terms := make([]*ast.Term, len(v))
			for i, s := range v {
				terms[i] = ast.StringTerm(s)
			}
			t = ast.ArrayTerm(terms...)
		default:
			val, err := ast.InterfaceToValue(v)
			if err != nil {
				return nil, fmt.Errorf("%w: claim %s: %w", policy.ErrEvaluation, name, err)
			}
			t = ast.NewTerm(val)
		}
		o := obj(parent)
		if o == nil || o.Get(ast.StringTerm(key)) != nil {
			return nil, fmt.Errorf("%w: claim %s collides with another claim", policy.ErrEvaluation, name)
		}
		o.Insert(ast.StringTerm(key), t)
	}
	return root, nil
}
