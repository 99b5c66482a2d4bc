"""Use cases that combine the domain, rendering and storage; the only place that commits a transaction."""
