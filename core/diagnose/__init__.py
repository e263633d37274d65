"""Diagnosis: findings about the host's published ports, each from one small check module."""
