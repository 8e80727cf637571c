"""The demo: the seed's SaaS onboarding sequence delivered on a virtual clock."""
