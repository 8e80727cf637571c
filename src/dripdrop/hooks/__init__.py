"""Hooks: Python hook modules and HTTP hooks whose values feed conditions and templates."""
