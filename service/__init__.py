"""dealkeeper: deal-hygiene automation for Close CRM."""

__version__ = "0.1.0"
