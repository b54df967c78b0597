"""Reliability and security tests: concurrency, crashes, object storage, hostile input."""
