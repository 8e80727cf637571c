"""The seed's ``MyApp`` hook modules, in Python (``"MyApp.OnboardingHooks"`` →
``"myapp.onboarding_hooks"``)."""
