"""Tools for people who write rules: checks against live Close, warnings about rules that
fight each other, explanations of one event, and backtests over Close's event log.

The checks and the analysis are pure functions over rules, metadata and events; the
commands in service/commands/rules.py fetch what they need from Close and print. It
imports only service.core and service.config; commands and sweeps' reports use it.
"""
