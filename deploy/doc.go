// Package deploy holds tdproof's deployment files, no code: the container
// image definition (container/Containerfile), the systemd unit
// (systemd/tdproof.service) and a Kubernetes example
// (kubernetes/tdproof.yaml). Its tests lint them, check that every
// tdproof command line they contain is accepted by the CLI, and, where
// buildah runs, build the image and smoke-test it.
package deploy
