"""iris_jupyterhub.demo (see the project issues)."""
