"""The emulated Microsoft cloud: Graph, ARM (compute, network, Sentinel), Log Analytics and a managed-identity
endpoint on one HTTPS server. Never imports the product package `shared`."""
