"""Enrolments: a learner's place in a course, paid with credits or by card."""
