// Package policy decides whether a claim set (package claims) is
// acceptable: declarative YAML rules or a Rego policy, one result. It
// supersedes dcap.Policy for the verification service (dcap does not
// import it: a TCB status is data, not a decision).
//
// Appraise(ctx, policy, claims, refs, at) returns an *Appraisal: the
// decision, every failed rule with its claim, expected and actual values
// (not only the first), the policy id and version, and an AR4SI-style
// trust vector. Reference values come from a refvalue.Store and are read
// at time at, so an expired reference value never matches. An error means
// the policy could not be evaluated, never that evidence was rejected.
//
// # Declarative rules
//
// A YAML document (ParseYAML; unknown keys are errors) or Rules built in
// Go (FromRules). The zero Rules are the built-in default (Default).
//
//	Key                                    Rule                Claim(s)
//	(always)                               authentic           tee, <tee>.tcb_status present
//	tees: [tdx]                            tee                 tee
//	accepted_tcb_statuses: [UpToDate]      tcb_status          <tee>.tcb_status (default: UpToDate only)
//	allow_expired_collateral_unsafe        collateral_expired  <tee>.collateral.expired
//	max_collateral_age: 720h               collateral_age      <tee>.collateral.issue_date
//	max_tcb_date_age: 8760h                tcb_date_age        <tee>.tcb_date
//	tcb_recovery_grace: 720h               tcb_status          <tee>.out_of_date_since (OutOfDate accepted
//	                                                           while the recovery is younger than this)
//	rejected_advisory_ids: [INTEL-SA-…]    advisory_ids        <tee>.{platform,qe,module}.advisory_ids
//	min_tcb_eval_num: 17                   tcb_eval_num        <tee>.collateral.tcb_eval_num
//	allow_unchecked_crl_unsafe             crl_checked         snp.crl_checked (SEV-SNP: true by default)
//	allow_debug_unsafe                     debug               tdx.td_attributes.debug, sgx.debug
//	allow_missing_sept_ve_disable_unsafe   sept_ve_disable     tdx.td_attributes.septve_disable
//	allow_service_td_unsafe                mr_servicetd        tdx.mr_servicetd_zero
//	ignore_known_reference_values_unsafe   reference_value     every claims.MeasurementNames entry with a valid reference value
//	reference_values: [tdx.mr_td, {name: my-rtmr3, claim: tdx.quote.body.rtmr_3}]
//	                                       reference_value     must exist and match
//	allowed_app_ids: [hex]                 app_id              dstack.app_id
//	allowed_compose_hashes: [hex]          compose_hash        dstack.compose_hash
//	expected_report_data: hex              report_data         <tee>.quote.body.report_data (prefix)
//	allow_events_after_system_ready_unsafe events_after_system_ready
//	                                                           dstack.events_after_system_ready (none by default)
//
// A missing claim fails its rule. Evidence of an unknown TEE fails
// "authentic" and nothing else is evaluated. Well-known measurements are
// compared only for the evidence's own TEE and, when dstack claims are
// present, for dstack names.
//
// # Rego
//
// Package policy/rego compiles an OPA v1 module, package tdproof.policy,
// that defines allow and optionally violations and trust_vector (see its
// Compile for input and data) into a Policy backed by an Evaluator. It is
// a separate package because OPA links net/http and log/slog, which this
// package must not. The query is prepared once per Policy; Cache (with
// rego.Parse) keeps compiled policies per (format, id, version, source
// hash).
// Rego policies should name their violations like the declarative rules,
// so results of both engines compare (testdata/twin.rego and
// testdata/twin.yaml decide identically on every test vector).
//
// # Trust vector
//
// Category maps rules to AR4SI categories: hardware (authentic, TCB and
// collateral rules; 97 on failure), configuration (debug, SEPT_VE_DISABLE,
// MRSERVICETD and unknown rules; 96), executables (reference_value,
// events_after_system_ready; 96)
// and instance-identity (app_id, compose_hash, report_data; 96).
// Declarative policies set hardware and configuration to 2 when they
// pass, executables when a reference value matched, instance-identity
// when an identity rule was configured and passed.
//
// # Security
//
// Appraise trusts the claim set: build it with claims.New from verified
// results. Rego policies cannot reach the network (http.send and
// net.lookup_ip_addr are removed) but are user code: they run with the
// caller's ctx, which should carry a deadline.
package policy
