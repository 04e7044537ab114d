"""The jupyter-server extension behind the JupyterLab panel (its own issue)."""
