"""Schedulers other than PostgreSQL itself (``DripDrop(scheduler=...)``): see docs/scheduling.md.

``dripdrop.scheduling.celery`` hands each due execution to a Celery task (extra ``celery``).
"""
