"""The platform's read/prediction API (FastAPI): ``serving.app.create_app`` builds it.

Routes live in ``serving/routes/`` (``live.py``: dashboards over the streaming jobs' indices).
Every route needs an API key with a scope (``lms.auth``); keys restricted to a teacher see only
that teacher's courses.
"""
