"""The MLOps page: what the Airflow plugin (``plugins/mlops_plugin.py``) serves inside the Airflow UI.

* :mod:`~mlops.web.data`: the page's data as JSON-ready dicts, read through ``mlops.models``, the lake and
  the drift history (read only);
* :mod:`~mlops.web.urls`: links to MLflow, Airflow and the plugin's report pages (also used by task links);
* :mod:`~mlops.web.metrics`: the same state as Prometheus text;
* :mod:`~mlops.web.app`: the FastAPI app (page, static files, JSON, reports, metrics), every route behind
  the login check the host passes in. ``static/`` holds the page and the pinned charting library (uPlot).

No Airflow import here: the plugin adapts Airflow's auth manager to the app.
"""
