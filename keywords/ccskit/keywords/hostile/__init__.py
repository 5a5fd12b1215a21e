"""Hostile-input keywords: raw connections, tokens, the bystander and stored-state checks."""
