"""In-memory twins of every port: the reference behaviour the contract suites hold others to."""
