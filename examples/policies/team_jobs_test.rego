package envfence.team_jobs_test

import data.envfence.team_jobs

job(labels, tier) := {
	"object": {"kind": "Job", "name": "backfill", "namespace": "payments", "labels": labels},
	"cluster": {"name": "eu-1", "environment": "production", "tier": tier},
}

test_team_job_on_production_tier_is_denied if {
	findings := team_jobs.deny with input as job({"team": "qa"}, "production")
	count(findings) == 1
	some f in findings
	f.rule == "team-job-on-production"
	contains(f.msg, "team qa")
}

test_team_job_on_staging_tier_is_allowed if {
	count(team_jobs.deny) == 0 with input as job({"team": "qa"}, "staging")
}

test_team_job_on_unknown_tier_is_allowed if {
	count(team_jobs.deny) == 0 with input as job({"team": "qa"}, null)
}

test_job_without_team_is_not_a_team_job if {
	count(team_jobs.deny) == 0 with input as job({}, "production")
}

test_deployment_of_a_team_is_not_a_job if {
	deployment := object.union(job({"team": "qa"}, "production"), {"object": {"kind": "Deployment", "name": "api", "labels": {"team": "qa"}}})
	count(team_jobs.deny) == 0 with input as deployment
}
