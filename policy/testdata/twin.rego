# Rego twin of twin.yaml (policy_test.TestTwins): the same rules with the
# same names, over the same claims and reference values.
package tdproof.policy

accepted := {"UpToDate", "SWHardeningNeeded", "ConfigurationAndSWHardeningNeeded"}

rejected_advisories := {"INTEL-SA-00837"}

# Well-known measurements this twin compares (claims.MeasurementClaim).
measurements := {
	"tdx.mr_td": ["tdx", "quote", "body", "mr_td"],
	"tdx.rtmr_0": ["tdx", "quote", "body", "rtmr_0"],
	"tdx.rtmr_1": ["tdx", "quote", "body", "rtmr_1"],
	"tdx.rtmr_2": ["tdx", "quote", "body", "rtmr_2"],
	"tdx.rtmr_3": ["tdx", "quote", "body", "rtmr_3"],
	"sgx.mr_enclave": ["sgx", "quote", "body", "mr_enclave"],
	"sgx.mr_signer": ["sgx", "quote", "body", "mr_signer"],
	"dstack.compose_hash": ["dstack", "compose_hash"],
}

tee := input.tee if input.tee in {"tdx", "sgx"}

default allow := false

allow if count(violations) == 0

claim(path) := object.get(input, path, "<absent>")

violations contains {"rule": "authentic", "claim": "tee", "actual": claim(["tee"])} if not input.tee in {"tdx", "sgx"}

violations contains {"rule": "authentic", "claim": sprintf("%s.tcb_status", [tee])} if {
	not input[tee].tcb_status
}

violations contains {"rule": "tcb_status", "claim": sprintf("%s.tcb_status", [tee]), "actual": s} if {
	s := claim([tee, "tcb_status"])
	not s in accepted
}

violations contains {"rule": "collateral_expired", "claim": sprintf("%s.collateral.expired", [tee])} if {
	claim([tee, "collateral", "expired"]) != false
}

violations contains {"rule": "collateral_age", "claim": sprintf("%s.collateral.issue_date", [tee])} if {
	issued := time.parse_rfc3339_ns(input[tee].collateral.issue_date)
	time.now_ns() - issued > 720 * 3600 * 1000000000
}

# Each component's advisories: <tee>.advisory_ids is the platform level's
# only (Intel's sa_list); the QE's and the module's reject as well.
advisory_components := ["platform", "qe", "module"]

violations contains {"rule": "advisory_ids", "claim": sprintf("%s.%s.advisory_ids", [tee, comp]), "actual": id} if {
	some comp in advisory_components
	some id in input[tee][comp].advisory_ids
	upper(id) in rejected_advisories
}

violations contains {"rule": "advisory_ids", "claim": sprintf("%s.%s.advisory_ids", [tee, comp])} if {
	some comp in ["platform", "qe"]
	tee
	not is_array(object.get(input, [tee, comp, "advisory_ids"], null))
}

violations contains {"rule": "tcb_eval_num", "claim": sprintf("%s.collateral.tcb_eval_num", [tee])} if {
	input[tee].collateral.tcb_eval_num < 15
}

violations contains {"rule": "debug", "claim": "sgx.debug"} if {
	tee == "sgx"
	input.sgx.debug != false
}

violations contains {"rule": "debug", "claim": "tdx.td_attributes.debug"} if {
	tee != "sgx"
	claim(["tdx", "td_attributes", "debug"]) != false
}

violations contains {"rule": "sept_ve_disable", "claim": "tdx.td_attributes.septve_disable"} if {
	tee == "tdx"
	claim(["tdx", "td_attributes", "septve_disable"]) != true
}

violations contains {"rule": "mr_servicetd", "claim": "tdx.quote.body.mr_servicetd"} if {
	tee == "tdx"
	claim(["tdx", "mr_servicetd_zero"]) != true
}

namespace_present(ns) if ns == tee

# dstack reference values apply to every TD quote: a quote without its
# event log lacks the claims and fails ("claim missing").
namespace_present("dstack") if tee == "tdx"

violations contains {"rule": "reference_value", "claim": concat(".", path), "expected": acc, "actual": actual} if {
	some name, path in measurements
	namespace_present(split(name, ".")[0])
	acc := data.tdproof.reference_values[name]
	actual := claim(path)
	not actual in acc
}

violations contains {"rule": "events_after_system_ready", "claim": "dstack.events_after_system_ready"} if {
	tee
	count(object.get(input, ["dstack", "events_after_system_ready"], [])) > 0
}

violations contains {"rule": "report_data", "claim": sprintf("%s.quote.body.report_data", [tee])} if {
	want := data.tdproof.expected_report_data
	want != ""
	not startswith(claim([tee, "quote", "body", "report_data"]), want)
}

trust_vector := {"hardware": 2} if allow
