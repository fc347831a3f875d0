"""Playbooks: declarative YAML files in playbooks/, validated against a schema at load time."""
