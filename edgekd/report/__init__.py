"""Experiment tables (``edgekd compare``) and figures/pages (``edgekd report``)."""
