"""The MLOps page: what the Airflow plugin (:mod:`mlops.airflow.plugin`) serves inside the Airflow UI.

It opens on the list of models (one per model file of the models folder) and has a page per model; every
route of a model reads only that model's settings (``load_settings(model=name)``).

* :mod:`~mlops.web.data`: the page's data as JSON-ready dicts, read through ``mlops.models``, the ledger, the
  lake and the drift history (read only);
* :mod:`~mlops.web.urls`: links to MLflow, Airflow and the plugin's per-model pages (also used by task links);
* :mod:`~mlops.web.metrics`: the same state as Prometheus text, every model, each sample labelled ``model``;
* :mod:`~mlops.web.app`: the FastAPI app (pages, static files, JSON, reports, metrics), every route behind
  the login check the host passes in. ``static/`` holds the page and the pinned charting library (uPlot).

No Airflow import here: the plugin adapts Airflow's auth manager (and its DB's DAG runs) to the app.
"""
