"""Retention of the app's data (存储期限): the plan per store and table, from the data map and declaration."""
