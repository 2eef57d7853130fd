"""Mechanics shared by the methods: layer hooks, quadrature, batching, references."""
