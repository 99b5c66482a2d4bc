"""The pure domain: model and rules, no framework, database or clock."""
