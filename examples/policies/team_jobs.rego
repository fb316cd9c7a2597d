# METADATA
# title: Team Jobs run only on non-production tiers
# description: >-
#   A Job or CronJob that a team owns (it carries a `team` label) is one-off or batch work:
#   migrations, backfills, load and integration tests. It belongs on a non-production tier; on a
#   production-tier cluster it shares nodes, the pod network and credentials with live services.
package envfence.team_jobs

job_kinds := {"Job", "CronJob"}

deny contains finding if {
	input.object.kind in job_kinds
	team := input.object.labels.team
	input.cluster.tier == "production"
	finding := {
		"msg": sprintf("%s/%s of team %s lands on cluster %s, whose tier is production; team Jobs run only on non-production tiers", [input.object.kind, input.object.name, team, input.cluster.name]),
		"rule": "team-job-on-production",
	}
}
