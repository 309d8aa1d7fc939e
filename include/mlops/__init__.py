"""mlops: the package behind the continuous-training DAGs. Import-light: submodules load heavy libraries lazily."""

__version__ = "0.1.0"
