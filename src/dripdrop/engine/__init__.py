"""The sequence engine: enrollments, progression, conditions, events, delivery of one execution."""
