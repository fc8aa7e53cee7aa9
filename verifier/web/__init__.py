"""The HTTP shell: the app factory (the one composition root), handlers, edge, problem+json, the
console and dashboard pages, metrics, the scan log and the server runner."""
