package envfence.repository.default_deny_test

import data.envfence.repository.default_deny

topology(objects) := {
	"clusters": [{"name": "prod-eu", "environment": "production"}, {"name": "dev", "environment": "non-production"}],
	"placements": {"prod-eu": objects, "dev": [deployment("sandbox")]},
}

deployment(namespace) := {"kind": "Deployment", "name": "api", "namespace": namespace, "file": "apps/api.yaml", "line": 1}

network_policy(namespace, spec) := {"kind": "NetworkPolicy", "name": "default-deny", "namespace": namespace, "file": "apps/np.yaml", "line": 1, "manifest": {"spec": spec}}

deny_all := {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}

test_namespace_without_policy_is_denied if {
	findings := default_deny.deny with input as topology([deployment("payments")])
	count(findings) == 1
	some f in findings
	f.location.file == "apps/api.yaml"
	contains(f.msg, "Ingress and Egress")
}

test_default_deny_for_both_directions_is_enough if {
	count(default_deny.deny) == 0 with input as topology([deployment("payments"), network_policy("payments", deny_all)])
}

test_ingress_only_policy_leaves_egress_open if {
	findings := default_deny.deny with input as topology([deployment("payments"), network_policy("payments", {"podSelector": {}})])
	some f in findings
	contains(f.msg, "for Egress")
	not contains(f.msg, "Ingress")
}

test_policy_that_selects_some_pods_is_not_default_deny if {
	selective := {"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Ingress", "Egress"]}
	count(default_deny.deny) == 1 with input as topology([deployment("payments"), network_policy("payments", selective)])
}

test_policy_in_another_namespace_does_not_count if {
	count(default_deny.deny) == 1 with input as topology([deployment("payments"), network_policy("billing", deny_all)])
}

test_non_production_clusters_are_not_checked if {
	count(default_deny.deny) == 0 with input as topology([])
}
