# METADATA
# title: Production namespaces carry a default-deny NetworkPolicy
# description: >-
#   Pods talk across namespaces unless a NetworkPolicy says otherwise. Every namespace that
#   receives workloads on a production cluster needs a NetworkPolicy that selects all its pods
#   and denies ingress and egress by default, so that only the traffic its other policies allow
#   gets through.
package envfence.repository.default_deny

# The repository-level evaluation: `input` is the topology (all clusters, placements by cluster).
# Each step is one pass over the placements (a rule per namespace that scanned every placement
# would be quadratic on a cluster with thousands of objects).

deny contains finding if {
	some [cluster, namespace, file, line] in first_placements
	missing := [direction | some direction in ["Ingress", "Egress"]; not denied[[cluster, namespace, direction]]]
	count(missing) > 0
	finding := {
		"msg": sprintf("namespace %s on production cluster %s has no default-deny NetworkPolicy for %s", [namespace, cluster, concat(" and ", missing)]),
		"rule": "missing-default-deny",
		"location": {"file": file, "line": line},
	}
}

# [cluster, namespace, file, line] of the first placement (by file and line) of each namespace
# on each production cluster: where the finding points.
# Written as two rules rather than with a helper function: a function call per placement
# costs more than the comparison it makes.
first_placements contains [cluster, entries[0][0], entries[0][1], entries[0][2]] if {
	some cluster, entries in production_entries
	count(entries) > 0
}

first_placements contains [cluster, entry[0], entry[1], entry[2]] if {
	some cluster, entries in production_entries
	some i, entry in entries
	i > 0
	entries[i - 1][0] != entry[0]
}

# For each production cluster, [namespace, file, line] of its placements in a namespace, sorted.
production_entries[name] := entries if {
	some cluster in input.clusters
	cluster.environment == "production"
	name := cluster.name
	entries := sort([[p.namespace, p.file, p.line] | some p in input.placements[name]; is_string(p.namespace)])
}

# [cluster, namespace, direction] that a NetworkPolicy denies by default: it selects every pod
# of its namespace and allows nothing in that direction.
denied contains [cluster, p.namespace, direction] if {
	some cluster, placements in input.placements
	some p in placements
	p.kind == "NetworkPolicy"
	spec := p.manifest.spec
	object.get(spec, "podSelector", {}) == {}
	some direction in policy_types(spec)
	count(object.get(spec, lower(direction), [])) == 0
}

# Without `policyTypes`, a NetworkPolicy is about ingress, and about egress when it has rules.
policy_types(spec) := types if {
	spec.policyTypes
	types := {t | some t in spec.policyTypes}
} else := {"Ingress", "Egress"} if {
	spec.egress
} else := {"Ingress"}
