package envfence.images_test

import data.envfence.images

placement(environment, image) := {
	"object": {"kind": "Deployment", "name": "api", "images": [{"image": image, "line": 12}]},
	"cluster": {"name": "prod-eu", "environment": environment},
}

test_latest_on_production_is_denied if {
	findings := images.deny with input as placement("production", "ghcr.io/acme/api:latest")
	count(findings) == 1
	some f in findings
	f.location.line == 12
	f.rule == "latest-tag"
}

test_untagged_on_production_is_denied if {
	count(images.deny) == 1 with input as placement("production", "registry.example.com:5000/acme/api")
}

test_pinned_version_is_allowed if {
	count(images.deny) == 0 with input as placement("production", "ghcr.io/acme/api:1.4.2")
}

test_digest_is_allowed if {
	count(images.deny) == 0 with input as placement("production", "ghcr.io/acme/api@sha256:0123456789abcdef")
}

test_latest_off_production_is_allowed if {
	count(images.deny) == 0 with input as placement("non-production", "ghcr.io/acme/api:latest")
}
