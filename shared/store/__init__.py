"""Durable state on Azure Storage: runs and their steps, the action ledger, delivery dedup keys, the budget."""
