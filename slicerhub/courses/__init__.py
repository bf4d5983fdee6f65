"""Courses: per-course folders, and Voilà apps that teachers publish to them."""
