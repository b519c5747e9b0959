"""Lets Beam ship bert-keras to remote workers: `--setup_file=./setup.py`.

Beam's stager builds an sdist from this file (`python setup.py sdist`) and Dataflow workers
pip-install it. Every piece of metadata lives in pyproject.toml; this file only hands over to
setuptools, which reads it.
"""

import setuptools

setuptools.setup()
