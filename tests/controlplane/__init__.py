"""A real Kubernetes control plane on loopback for tests, benchmarks and local runs."""
