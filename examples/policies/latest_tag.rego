# METADATA
# title: No `latest` image tags on production clusters
# description: >-
#   An image without a tag, or tagged `latest`, changes under a running workload whenever
#   someone pushes: a rollback brings back whatever was pushed last, and two replicas may run
#   different code. On production clusters every image is pinned to a version or a digest.
package envfence.images

deny contains finding if {
	input.cluster.environment == "production"
	some image in input.object.images
	floating(image.image)
	finding := {
		"msg": sprintf("%s/%s runs image %s on production cluster %s: pin a version or a digest instead of latest", [input.object.kind, input.object.name, image.image, input.cluster.name]),
		"rule": "latest-tag",
		"location": {"line": image.line},
	}
}

# `app:latest`, or no tag at all (which pulls latest). A digest pins the image whatever the tag.
floating(image) if {
	not contains(image, "@")
	endswith(image, ":latest")
}

floating(image) if {
	not contains(image, "@")
	not tagged(image)
}

# The tag follows a colon in the last path segment (`registry:5000/app` has no tag).
tagged(image) if {
	segments := split(image, "/")
	contains(segments[count(segments) - 1], ":")
}
