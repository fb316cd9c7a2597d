package envfence.privileged_test

import data.envfence.privileged

deployment(privileged) := {"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"template": {"spec": {"containers": [{"name": "app", "securityContext": {"privileged": privileged}}]}}}}

test_privileged_container_is_denied if {
	privileged.deny["container app of Deployment web runs privileged on production cluster prod-eu"] with input as {
		"object": {"manifest": deployment(true)},
		"cluster": {"name": "prod-eu", "environment": "production"},
	}
}

test_unprivileged_container_is_allowed if {
	count(privileged.deny) == 0 with input as {
		"object": {"manifest": deployment(false)},
		"cluster": {"name": "prod-eu", "environment": "production"},
	}
}

test_privileged_container_off_production_is_allowed if {
	count(privileged.deny) == 0 with input as {
		"object": {"manifest": deployment(true)},
		"cluster": {"name": "dev", "environment": "non-production"},
	}
}
