"""`lms demo`: the whole platform on local services, one step after another.

The steps live in `lms.demo.steps` so that the end-to-end test runs exactly what a user runs; the
summary (printed, and written as JSON next to the demo's files) in `lms.demo.summary`.
"""
