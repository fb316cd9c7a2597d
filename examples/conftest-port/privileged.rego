# METADATA
# title: No privileged containers on production clusters
# description: >-
#   Ported from a conftest policy (docs/policies-rego.md, "Porting a conftest policy"). A
#   privileged container has the node's devices and kernel capabilities: a compromise of the
#   container is a compromise of the node and of everything else it runs.
package envfence.privileged

deny contains msg if {
	input.cluster.environment == "production"
	input.object.manifest.kind == "Deployment"
	some container in input.object.manifest.spec.template.spec.containers
	container.securityContext.privileged
	msg := sprintf("container %s of Deployment %s runs privileged on production cluster %s", [container.name, input.object.manifest.metadata.name, input.cluster.name])
}
