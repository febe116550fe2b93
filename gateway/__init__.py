"""Shared core of Lockgate: entities, snapshots, the plugin contract and the plugins.

Imported by both planes; imports neither.
"""
