# METADATA
# title: Production namespaces carry a default-deny NetworkPolicy
# description: >-
#   Pods talk across namespaces unless a NetworkPolicy says otherwise. Every namespace that
#   receives workloads on a production cluster needs a NetworkPolicy that selects all its pods
#   and denies ingress and egress by default, so that only the traffic its other policies allow
#   gets through.
package envfence.repository.default_deny

# The repository-level evaluation: `input` is the topology (all clusters, placements by cluster).

deny contains finding if {
	some cluster in input.clusters
	cluster.environment == "production"
	some namespace in namespaces_on(cluster.name)
	missing := [direction | some direction in ["Ingress", "Egress"]; not denies(cluster.name, namespace, direction)]
	count(missing) > 0
	first := [p | some p in input.placements[cluster.name]; p.namespace == namespace][0]
	finding := {
		"msg": sprintf("namespace %s on production cluster %s has no default-deny NetworkPolicy for %s", [namespace, cluster.name, concat(" and ", missing)]),
		"rule": "missing-default-deny",
		"location": {"file": first.file, "line": first.line},
	}
}

namespaces_on(cluster) := {p.namespace |
	some p in input.placements[cluster]
	is_string(p.namespace)
}

# A NetworkPolicy of the namespace that selects every pod and allows nothing in `direction`.
denies(cluster, namespace, direction) if {
	some p in input.placements[cluster]
	p.kind == "NetworkPolicy"
	p.namespace == namespace
	spec := p.manifest.spec
	object.get(spec, "podSelector", {}) == {}
	direction in policy_types(spec)
	count(object.get(spec, lower(direction), [])) == 0
}

# Without `policyTypes`, a NetworkPolicy is about ingress, and about egress when it has rules.
policy_types(spec) := types if {
	spec.policyTypes
	types := {t | some t in spec.policyTypes}
} else := {"Ingress", "Egress"} if {
	spec.egress
} else := {"Ingress"}
