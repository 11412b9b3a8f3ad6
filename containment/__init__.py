"""Synthetic-data containment: the Function App's code, cut by concern in one direction of
dependency (README, Architecture):

    core <- judge <- plan <- adapters <- record <- detect, act, operate <- deployment

Importing the package imports nothing: the functions load what they need on first use.
"""
