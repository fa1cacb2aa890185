// The pod sandbox image's program, for the real node of the operator tests.
module gregor.dev/tests/kube/pause

go 1.24.0
